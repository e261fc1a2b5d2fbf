"""Evaluations of a run on fresh seeds, on the training grid (validation, final, published).

Adversary: `takeover.run_takeover` (the protocol of `tools.takeover`: grow the organism with the
original, inject after `inject_at` steps as in training, measure `steps` later). NCA:
`rollout.grow` from the seed, compared with the target. `assess` is the zoo's protocol (ours,
the published adversary and the control on the same organisms, judged by `zoo.verdict`): the
results entries and the training binaries' final verdict both use it.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from tf_multinca import hub
from tf_multinca import metrics
from tf_multinca import render
from tf_multinca import rollout
from tf_multinca import takeover
from tf_multinca import zoo


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


def zoo_evaluation(name, original, adversary, injection, target, protocol, fire_rate=None,
                   strip=False):
  """`adversary` (None: the control) over `original` under a `zoo.Protocol`.

  Returns:
    (`zoo.Evaluation` with every organism's metrics at `protocol.ages`, the strip image of
    organism 0 at `protocol.strip_steps` or None without `strip`).
  """
  result = fresh_takeover(
      original, adversary, injection if adversary is not None else None, target, protocol.grid,
      protocol.inject_at, max(protocol.ages), protocol.seeds, protocol.seed, fire_rate,
      protocol.strip_steps if strip else ())
  ages = {}
  for age in protocol.ages:
    row = protocol.inject_at + age
    ages[age] = zoo.SeedMetrics(
        original_fraction=tuple(float(v) for v in result.metrics['original_fraction'][row]),
        alive=tuple(float(v) for v in result.metrics['alive'][row]),
        mse=tuple(float(v) for v in result.metrics['mse'][row]) if target is not None else ())
  distance, cosine = (None, None) if adversary is None else weight_metrics(adversary, original)
  evaluation = zoo.Evaluation(model=name, ages=ages, no_injection=result.info['no_injection'],
                              weight_distance=distance, cosine_similarity=cosine)
  image = None
  if strip:
    image = render.evolution_strip(result.states[:, 0], result.convention, zoom_factor=3,
                                   steps=result.record_steps, marks=takeover.marks_of(result))
  return evaluation, image


def assess(kind, protocol, original, adversary, injection, target, fire_rate=None,
           published=None, control=True, strips=False):
  """Ours, the published adversary and the control on the same organisms, and the verdict.

  Args:
    kind: the bar (`zoo.verdict`): 'static', 'dynamic', 'perturbation' or 'testing'.
    protocol: `zoo.Protocol`.
    original, adversary: `CAModel`s in one convention.
    injection: the injection spec; target: `[H, W, 4]` padded target.
    published: (name, `CAModel`) of the published adversary, or None.
    control: evaluate the organism alone too.
    strips: also return each evaluation's strip.

  Returns:
    (`zoo.Assessment`, {'ours' | 'published' | 'control': strip image} (empty without
    `strips`)).
  """
  args = dict(injection=injection, target=target, protocol=protocol, fire_rate=fire_rate,
              strip=strips)
  runs = {'ours': zoo_evaluation('ours', original, adversary, **args)}
  if published is not None:
    runs['published'] = zoo_evaluation(published[0], original, published[1], **args)
  if control:
    runs['control'] = zoo_evaluation('control', original, None, **args)
  ev = {k: v[0] for k, v in runs.items()}
  verdict = zoo.verdict(kind, ev['ours'], ev.get('published'), protocol.ages[-1],
                        protocol.seeds, control=ev.get('control'))
  assessment = zoo.Assessment(protocol, ev['ours'], ev.get('published'), ev.get('control'),
                              verdict)
  return assessment, {k: v[1] for k, v in runs.items() if v[1] is not None}


def held_out_protocol(protocol, seeds=zoo.TEST_SEEDS):
  """`protocol` on the held-out test set: `seeds` organisms of `zoo.TEST_SEED`, no strips."""
  return dataclasses.replace(protocol, seeds=seeds, seed=zoo.TEST_SEED, strip_steps=())


def summary(assessment):
  """Plain figures of an assessment at its last age (metrics.json, the console): for ours and
  the published adversary, complete / mean / median / worst MSE, and the verdict's checks."""
  age = assessment.protocol.ages[-1]
  out = {'seeds': assessment.protocol.seeds, 'seed': assessment.protocol.seed, 'age': age,
         'passed': assessment.verdict.passed,
         'checks': [list(c) for c in assessment.verdict.checks]}
  for key in ('ours', 'published'):
    ev = getattr(assessment, key)
    if ev is None:
      continue
    m = ev.at(age)
    mean, _, worst = m.stats('mse')
    out[key] = {'model': ev.model, 'complete': m.complete(), 'mse_mean': mean,
                'mse_median': m.median('mse'), 'mse_worst': worst,
                'alive': m.stats('alive')[0]}
  return out


def verdict_line(assessment):
  """One line: the bar's verdict on `assessment` with its figures, for the console."""
  s = summary(assessment)
  o, p = s['ours'], s.get('published')
  head = (f"bar (held-out test set: {s['seeds']} organisms, generator seed {s['seed']}, "
          f"MSE {s['age']} steps after injection): "
          f"{'PASSES' if s['passed'] else 'FAILS'}")
  parts = [f"complete {o['complete']}/{s['seeds']}"]
  if p is not None:
    parts[0] += f" (published {p['complete']})"
  if not math.isnan(o['mse_mean']):
    ratio = (lambda a, b: f'{a / b:.2f}x' if b else '-')
    mse = (f"MSE mean {o['mse_mean']:.4f} / median {o['mse_median']:.4f} / worst "
           f"{o['mse_worst']:.4f}")
    if p is not None:
      mse += (f" (published {p['mse_mean']:.4f} / {p['mse_median']:.4f} / "
              f"{p['mse_worst']:.4f}: {ratio(o['mse_mean'], p['mse_mean'])} mean, "
              f"{ratio(o['mse_median'], p['mse_median'])} median, limit {zoo.MSE_FACTOR:g}x)")
    parts.append(mse)
  failed = [c[0] for c in assessment.verdict.checks if not c[3]]
  if failed:
    parts.append('failed: ' + ', '.join(failed))
  return head + '; ' + '; '.join(parts)


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
    marks = {c.inject_min: 'injected'} if self.is_adversary else None
    strip = render.evolution_strip(states, self.convention, zoom_factor=2,
                                   with_mask=self.is_adversary, steps=steps, marks=marks)
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

  def test_set(self, adversary, target, kind):
    """The bar's verdict on `adversary` (`assess`): ours and the published adversary
    `config.compare_with` on `config.test_seeds` organisms of the held-out test set, measured
    `eval_steps` after injection, against the untrimmed `target` as the results zoo measures.
    None without a published adversary (or with test_seeds=0)."""
    c = self.config
    if not (self.is_adversary and c.compare_with and c.test_seeds):
      return None
    protocol = zoo.Protocol(seeds=c.test_seeds, seed=zoo.TEST_SEED, inject_at=c.inject_min,
                            ages=(c.eval_steps,), grid=self.grid)
    published = (c.compare_with, hub.load(c.compare_with, self.convention.name))
    return assess(kind, protocol, self.original, adversary, c.injection, target, c.fire_rate,
                  published=published, control=kind == 'dynamic')[0]

  def score(self, m):
    """The objective at the evaluation's last step, from evaluation metrics `m`: the MSE to
    the target (nca), `l1 MSE + l2 N_old` with N_old counted in mature original cells
    (adversary: a lower MSE does not make up for an unfinished takeover)."""
    c = self.config
    if not self.is_adversary:
      return m['mse']
    return c.l1 * m['mse'] + c.l2 * m['original_fraction'] * m['alive']
