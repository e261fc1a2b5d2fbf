"""Growing an organism from its seed, for pictures, checks and validations."""

import collections

import tensorflow as tf

def lru_get(cache, key, make, kept=8):
  """`cache[key]` (an `OrderedDict`), made by `make()` on a miss; only the `kept` most recently
  used entries stay. Traced steps are cached by model ids this way: an entry must hold its
  models, so that their ids stay theirs while cached."""
  if key in cache:
    cache.move_to_end(key)
    return cache[key]
  cache[key] = entry = make()
  while len(cache) > kept:
    cache.popitem(last=False)
  return entry


# The traced step of each recently used (model, fire rate), with its generator: a training
# run's validations grow the same model every few hundred steps, and a new `tf.function` per
# call would retrace it each time (seconds per validation).
_STEPS = collections.OrderedDict()


def _traced_step(model, fire_rate):
  """(generator, traced step) of `model` at `fire_rate`, cached (`lru_get`)."""
  def make():
    rng = tf.random.Generator.from_seed(0)
    return model, rng, tf.function(lambda s: model(s, fire_rate=fire_rate, rng=rng))
  return lru_get(_STEPS, (id(model), fire_rate), make)[1:]


def grow(model, steps, batch=1, size=None, seed=0, keep_every=1, x=None, fire_rate=None):
  """Rolls `model` (a `CAModel` or `MultiNCA`) out from its seed.

  Args:
    model: called as `model(x, fire_rate=..., rng=...)`.
    steps: number of steps.
    batch: samples (ignored when `x` is given).
    size: grid side; None for the convention's grid.
    seed: seed of the `tf.random.Generator` drawing the fire masks (the draws of
      `Generator.from_seed(seed)`, whatever was grown before).
    keep_every: keep every n-th state (and always the last); 0 keeps only the last.
    x: start state instead of the seed.

  Returns:
    (final state `[B, H, W, C]`, list of (step, state) kept, the seed state included).
  """
  rng, step = _traced_step(model, fire_rate)
  rng.reset_from_seed(seed)
  x = model.seed(batch, size) if x is None else x
  kept = [(0, x)] if keep_every else []
  for t in range(1, steps + 1):
    x = step(x)
    if (keep_every and t % keep_every == 0) or t == steps:
      kept.append((t, x))
  return x, kept
