"""Growing an organism from its seed, for pictures and checks."""

import tensorflow as tf


def grow(model, steps, batch=1, size=None, seed=0, keep_every=1, x=None, fire_rate=None):
  """Rolls `model` (a `CAModel` or `MultiNCA`) out from its seed.

  Args:
    model: called as `model(x, fire_rate=..., rng=...)`.
    steps: number of steps.
    batch: samples (ignored when `x` is given).
    size: grid side; None for the convention's grid.
    seed: seed of the `tf.random.Generator` drawing the fire masks.
    keep_every: keep every n-th state (and always the last); 0 keeps only the last.
    x: start state instead of the seed.

  Returns:
    (final state `[B, H, W, C]`, list of (step, state) kept, the seed state included).
  """
  rng = tf.random.Generator.from_seed(seed)
  step = tf.function(lambda s: model(s, fire_rate=fire_rate, rng=rng))
  x = model.seed(batch, size) if x is None else x
  kept = [(0, x)] if keep_every else []
  for t in range(1, steps + 1):
    x = step(x)
    if (keep_every and t % keep_every == 0) or t == steps:
      kept.append((t, x))
  return x, kept
