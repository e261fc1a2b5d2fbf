"""End-of-run evaluations on fresh seeds, on the training grid.

Adversary: `takeover.run_takeover` (the protocol of `tools.takeover`: grow the organism with the
original, inject after `inject_at` steps as in training, measure `steps` later). NCA:
`rollout.grow` from the seed, compared with the target.
"""

import numpy as np
import tensorflow as tf

from tf_multinca import rollout
from tf_multinca import takeover


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
  record = sorted(set(_record_steps(inject_at, 3)) | {inject_at + 1} |
                  {inject_at + t for t in _record_steps(steps, 6)})
  result = takeover.run_takeover(
      original, adversary, injection, target, steps_before=inject_at, steps_after=steps,
      seeds=seeds, seed=seed, fire_rate=fire_rate, record_steps=record, size=grid,
      lenient=True)
  out = {}
  for k, v in result.metrics.items():
    if k == 'mse' and target is None:
      continue  # no target, no MSE; a NaN of a diverged rule is kept (it scores as such)
    out[k], out[k + '_std'] = float(v[-1].mean()), float(v[-1].std())
  out['no_injection'] = result.info['no_injection']
  out['seeds'], out['steps_after_injection'], out['inject_at'] = seeds, steps, inject_at
  return out, result.states[:, 0], list(result.record_steps)


def evaluate_nca(ca, target, grid, steps=200, seeds=8, seed=1234, fire_rate=None):
  """Grows `ca` from its seed for `steps` steps; MSE of `[RGB, alpha]` to `target`.

  Returns:
    (metrics dict, recorded states `[R, H, W, 16]` of sample 0, their steps).
  """
  x, kept = rollout.grow(ca, steps, batch=seeds, size=grid, seed=seed, fire_rate=fire_rate)
  record = set(_record_steps(steps, 8)) | {0}
  kept = [(t, s) for t, s in kept if t in record]
  mse = tf.reduce_mean(tf.square(x[..., :4] - target), axis=[1, 2, 3])
  alive = tf.reduce_sum(tf.cast(x[..., 3] > 0.1, tf.float32), axis=[1, 2])
  out = {'mse': float(tf.reduce_mean(mse)), 'mse_std': float(tf.math.reduce_std(mse)),
         'alive': float(tf.reduce_mean(alive)), 'seeds': seeds, 'steps': steps}
  return out, np.stack([s[0].numpy() for _, s in kept]), [t for t, _ in kept]
