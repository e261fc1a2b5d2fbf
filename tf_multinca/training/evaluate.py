"""Evaluations of a run on fresh seeds, on the training grid (validation, final, published).

Adversary: `takeover.run_takeover` (the protocol of `tools.takeover`: grow the organism with the
original, inject after `inject_at` steps as in training, measure `steps` later). NCA:
`rollout.grow` from the seed, compared with the target.
"""

import numpy as np
import tensorflow as tf

from tf_multinca import hub
from tf_multinca import metrics
from tf_multinca import render
from tf_multinca import rollout
from tf_multinca import takeover


def _record_steps(total, n=8):
  return sorted(set(int(round(t)) for t in np.linspace(0, total, n)))


def fresh_takeover(original, adversary, injection, target, grid, inject_at, steps, seeds, seed,
                   fire_rate=None, record_steps=()):
  """The evaluation protocol's takeover (validation, final evaluation, `reproduce`).

  `seeds` organisms grown from the seed for `inject_at` steps, injected, then `steps` more:
  `takeover.run_takeover`, lenient (a seed where the injection does not fit is counted in
  `info['no_injection']`, not refused). `adversary=None` (with `injection=None`) is the
  control. Returns the `takeover.TakeoverResult`.
  """
  return takeover.run_takeover(
      original, adversary, injection, target, steps_before=inject_at, steps_after=steps,
      seeds=seeds, seed=seed, fire_rate=fire_rate, record_steps=list(record_steps), size=grid,
      lenient=True)


def weight_metrics(adversary, original):
  """(|dw| RMS, cosine similarity) of `adversary`'s weights to `original`'s (fig. 15), floats."""
  return (float(metrics.weight_distance(adversary, original)),
          float(metrics.cosine_similarity(adversary, original)))


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
    (metrics dict of floats at the last step, with `*_std`, `no_injection` (samples where the
    square did not fit) and `complete` (the share of samples with no original cell left),
    recorded states `[R, H, W, 15 + k]` of sample 0, their steps).
  """
  record = sorted(set(_record_steps(inject_at, 3)) | {inject_at + 1} |
                  {inject_at + t for t in _record_steps(steps, 6)})
  result = fresh_takeover(original, adversary, injection, target, grid, inject_at, steps, seeds,
                          seed, fire_rate, record)
  out = {}
  for k, v in result.metrics.items():
    if k == 'mse' and target is None:
      continue  # no target, no MSE; a NaN of a diverged rule is kept (it scores as such)
    out[k], out[k + '_std'] = float(v[-1].mean()), float(v[-1].std())
  out['no_injection'] = result.info['no_injection']
  # The share of samples with no original cell left: the bar counts complete takeovers, and a
  # mean original fraction of 0.0001 hides a seed that keeps one cell.
  out['complete'] = float((result.metrics['original_fraction'][-1] == 0).mean())
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
  mse = metrics.single_target_loss(x, target)
  alive = metrics.single_alive_cells(x)
  out = {'mse': float(tf.reduce_mean(mse)), 'mse_std': float(tf.math.reduce_std(mse)),
         'alive': float(tf.reduce_mean(alive)), 'seeds': seeds, 'steps': steps}
  return out, np.stack([s[0].numpy() for _, s in kept]), [t for t, _ in kept]


class RunEvaluator:
  """A run's evaluations under its protocol: final (seed `eval_seed`), validation (another
  seed) and the published adversary's (`compare_with`) alike.

  Args:
    config: the run's `TrainConfig`.
    original: the frozen original (adversary runs) or None.
    target: `[H, W, 4]` padded target (NumPy).
    grid: grid side.
    convention: the run's `Convention`.
  """

  def __init__(self, config, original, target, grid, convention):
    self.config = config
    self.original = original
    self.target = target
    self.grid = grid
    self.convention = convention
    self.is_adversary = original is not None

  def evaluate(self, trainee, seed=None):
    """(metrics, strip image, recorded steps) of `trainee` on fresh seeds (the generator
    seeded with `seed`, default `config.eval_seed`)."""
    c = self.config
    seed = c.eval_seed if seed is None else seed
    if self.is_adversary:
      m, states, steps = self.evaluate_adversary(trainee, seed)
    else:
      m, states, steps = evaluate_nca(trainee, self.target, self.grid, steps=c.eval_steps,
                                      seeds=c.eval_seeds, seed=seed, fire_rate=c.fire_rate)
    strip = render.evolution_strip(states, self.convention, zoom_factor=2,
                                   with_mask=self.is_adversary, steps=steps)
    return m, strip, steps

  def evaluate_adversary(self, adversary, seed=None):
    """`evaluate_adversary` of `adversary` under this run's protocol, plus its weight
    distance and cosine similarity to the original."""
    c = self.config
    m, states, steps = evaluate_adversary(
        self.original, adversary, c.injection, self.target, self.grid, inject_at=c.inject_min,
        steps=c.eval_steps, seeds=c.eval_seeds, seed=c.eval_seed if seed is None else seed,
        fire_rate=c.fire_rate)
    m['weight_distance'], m['cosine_similarity'] = weight_metrics(adversary, self.original)
    return m, states, steps

  def compare(self):
    """The published adversary `config.compare_with` under the same evaluation, or None."""
    c = self.config
    if not (self.is_adversary and c.compare_with):
      return None
    m, _, _ = self.evaluate_adversary(hub.load(c.compare_with, self.convention.name))
    m['name'] = c.compare_with
    return m

  def score(self, m):
    """The objective at the evaluation's last step, from evaluation metrics `m`: the MSE to
    the target (nca), `l1 MSE + l2 N_old` with N_old counted in mature original cells
    (adversary: a lower MSE does not make up for an unfinished takeover)."""
    c = self.config
    if not self.is_adversary:
      return m['mse']
    return c.l1 * m['mse'] + c.l2 * m['original_fraction'] * m['alive']
