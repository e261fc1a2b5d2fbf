"""End-of-run evaluations on fresh seeds, on the training grid.

Adversary: grow the organism with the original, inject as in training, roll the pairing out and
report the takeover metrics of `tf_multinca.metrics` (the same protocol as `tools.takeover`:
inject after `inject_at` steps, measure `steps` later). NCA: grow from the seed and compare with
the target.
"""

import numpy as np
import tensorflow as tf

from tf_multinca import injection as inj
from tf_multinca import metrics
from tf_multinca import multi


def _record_steps(total, n=8):
  return sorted(set(int(round(t)) for t in np.linspace(0, total, n)))


def evaluate_adversary(original, adversary, injection, target, grid, inject_at=60, steps=500,
                       seeds=8, seed=1234, fire_rate=None):
  """The takeover of `adversary` over `original` on fresh seeds.

  Args:
    original, adversary: `CAModel`s in one convention.
    injection: injection spec (see `injection.parse_injection`).
    target: `[H, W, 4]` padded target.
    grid: grid side.
    inject_at: growth steps before injection.
    steps: steps after injection.
    seeds: samples.
    seed: seed of the evaluation's generator.

  Returns:
    (metrics dict of floats at the last step, with `*_std` and `no_injection` (samples where the
    square did not fit), recorded states `[R, H, W, 15 + k]` of sample 0, their steps).
  """
  spec = inj.parse_injection(injection)
  net = multi.MultiNCA([original, adversary])
  rng = tf.random.Generator.from_seed(seed)
  padding = original.convention.padding
  step = tf.function(lambda s: net(s, fire_rate=fire_rate, rng=rng))
  x = net.seed(seeds, grid)
  total = inject_at + steps
  record = set(_record_steps(inject_at, 3)) | {inject_at + 1} | set(
      inject_at + t for t in _record_steps(steps, 6))
  kept, kept_steps = [], []
  no_injection = 0
  for t in range(1, total + 1):
    x = step(x)
    if t == inject_at:
      mask = inj.injection_mask(x, spec, padding, rng)
      no_injection = int(tf.reduce_sum(tf.cast(
          tf.reduce_max(mask, [1, 2, 3]) == 0.0, tf.int32)))
      x = inj.inject(x, mask)
    if t in record:
      kept.append(x[0].numpy())
      kept_steps.append(t)
  m = metrics.takeover_metrics(x, tf.constant(target))
  out = {k: float(tf.reduce_mean(v)) for k, v in m.items()}
  out.update({k + '_std': float(tf.math.reduce_std(v)) for k, v in m.items()})
  out['no_injection'] = no_injection
  out['seeds'], out['steps_after_injection'], out['inject_at'] = seeds, steps, inject_at
  return out, np.stack(kept), kept_steps


def evaluate_nca(ca, target, grid, steps=200, seeds=8, seed=1234, fire_rate=None):
  """Grows `ca` from its seed for `steps` steps; MSE of `[RGB, alpha]` to `target`.

  Returns:
    (metrics dict, recorded states `[R, H, W, 16]` of sample 0, their steps).
  """
  rng = tf.random.Generator.from_seed(seed)
  step = tf.function(lambda s: ca(s, fire_rate=fire_rate, rng=rng))
  x = ca.seed(seeds, grid)
  record = set(_record_steps(steps, 8))
  kept, kept_steps = [x[0].numpy()], [0]
  for t in range(1, steps + 1):
    x = step(x)
    if t in record:
      kept.append(x[0].numpy())
      kept_steps.append(t)
  mse = tf.reduce_mean(tf.square(x[..., :4] - target), axis=[1, 2, 3])
  alive = tf.reduce_sum(tf.cast(x[..., 3] > 0.1, tf.float32), axis=[1, 2])
  out = {'mse': float(tf.reduce_mean(mse)), 'mse_std': float(tf.math.reduce_std(mse)),
         'alive': float(tf.reduce_mean(alive)), 'seeds': seeds, 'steps': steps}
  return out, np.stack(kept), kept_steps
