"""Grow an organism, inject adversaries, and follow the takeover step by step.

The library behind `python -m tools.takeover`: `run_takeover` runs a batched rollout (one sample
per seed) and returns per-step metrics and recorded states; `write_outputs` writes them;
`run_named` and `report` do both for names (`hub.load_pairing`).
"""

import collections
import csv
import dataclasses
import io
import json
import pathlib

import numpy as np
import tensorflow as tf

from tf_multinca import damage as dmg
from tf_multinca import errors
from tf_multinca import fileio
from tf_multinca import hub
from tf_multinca import injection as inj
from tf_multinca import layout
from tf_multinca import limits
from tf_multinca import metrics
from tf_multinca import multi
from tf_multinca import render
from tf_multinca import rollout

METRIC_NAMES = ('original_fraction', 'alive', 'mse')


class TakeoverError(errors.Error, ValueError):
  """A takeover that cannot be run as asked (conventions, injection, arguments)."""


@dataclasses.dataclass
class TakeoverResult:
  """What a rollout produced.

  Attributes:
    steps: `[T + 1]` step index of each metric row (0 = the seed).
    metrics: name -> `[T + 1, B]` per-step, per-seed values.
    record_steps: steps at which states were recorded.
    states: `[R, B, H, W, 15 + k]` recorded states (multi layout).
    injection_step: step after which the adversaries were injected (None for a control).
    convention: the convention's name (for rendering).
  """
  steps: np.ndarray
  metrics: dict
  record_steps: list
  states: np.ndarray
  injection_step: int | None
  convention: str
  info: dict = dataclasses.field(default_factory=dict)

  def at(self, step):
    """name -> (mean, std) over seeds at `step`."""
    i = int(np.searchsorted(self.steps, step))
    if i >= len(self.steps) or self.steps[i] != step:
      raise KeyError(f'step {step} is not in this rollout (0..{self.steps[-1]})')
    return {k: (float(v[i].mean()), float(v[i].std())) for k, v in self.metrics.items()}


def default_record_steps(steps_before, steps_after):
  """The steps of the evolution strip: the paper's fig. 12 spacing."""
  total = steps_before + steps_after
  marks = {0, steps_before // 2, steps_before, steps_before + 1, steps_before + 40,
           steps_before + 90, steps_before + 140, steps_before + 240, steps_before + 340, total}
  return sorted(s for s in marks if 0 <= s <= total)


def _to_multi_fixed(x, mask):
  """Single state + fixed mask -> multi layout (A_0 = alpha (1 - M), A_1 = alpha M)."""
  alpha = x[..., layout.ALPHA:layout.ALPHA + 1]
  return tf.concat([x[..., layout.RGB], x[..., layout.HIDDEN], alpha * (1.0 - mask),
                    alpha * mask], -1)


def run_takeover(original, adversary=None, injection=None, target=None, steps_before=60,
                 steps_after=500, seeds=8, seed=0, mode='multi', fire_rate=None,
                 record_steps=None, gif_every=0, size=None, lenient=False, damages=()):
  """Grows `seeds` organisms with the original, injects, and rolls out the pairing.

  Args:
    original: `CAModel`, rule 0.
    adversary: `CAModel` or None for a control (the organism alone).
    injection: spec for `injection.parse_injection` ('square:2', 'spray:0.1', a dict); required
      with an adversary.
    target: `[H, W, 4]` padded target, or None (no MSE).
    steps_before: steps grown from the seed before injection.
    steps_after: steps after injection.
    seeds: batch size; sample b uses the b-th draw of the generator seeded with `seed`.
    mode: 'multi' (the paper's Multiple NCA) or 'fixed' (Randazzo et al.'s fixed mask).
    record_steps: steps whose states are kept (default `default_record_steps`).
    gif_every: keep every n-th state (and the last) for a GIF (0: the `record_steps`).
    size: grid side; None for the convention's grid.
    lenient: a square that fits inside no sample's organism is not an error: those samples
      get no adversary, and `result.info['no_injection']` counts them (training evaluations,
      where an adversary that shrank the organism must still be scored).
    damages: `damage.Damage`s, each applied after its step (after the injection where both
      fall on one step); `result.info['damage_steps']` lists them.

  Returns:
    A `TakeoverResult`.

  Raises:
    TakeoverError: mismatched conventions, a missing or unfittable injection, bad arguments.
  """
  if mode not in ('multi', 'fixed'):
    raise TakeoverError(f"mode={mode!r}; expected 'multi' or 'fixed'")
  if steps_before < 0 or steps_after < 0 or seeds < 1:
    raise TakeoverError('steps_before and steps_after must be >= 0 and seeds >= 1')
  if adversary is not None:
    hub.check_conventions(original.convention.name, adversary.convention.name,
                          'load both in one convention (pass convention=...)')
    if injection is None:
      raise TakeoverError('an adversary needs an injection (square:S, spray:P or checkerboard)')
    spec = inj.parse_injection(injection)
  elif mode == 'fixed':
    raise TakeoverError("mode='fixed' needs an adversary")
  convention = original.convention
  padding = convention.padding
  st = _stepper(original, adversary, mode, fire_rate)
  rng = st.rng
  rng.reset_from_seed(seed)  # the draws of Generator.from_seed(seed)
  total = steps_before + steps_after
  record = sorted(set(record_steps or default_record_steps(steps_before, steps_after)))
  gif_steps = set(range(0, total + 1, gif_every)) if gif_every else set(record)
  gif_steps.add(total)
  keep = set(record) | gif_steps
  record_set = set(record)

  grid = size or convention.grid_size
  limits.check(limits.rollout_bytes(seeds, grid, layout.multi_channels(2),
                                    kept_states=len(record)),
               f'a takeover of {seeds} seeds on a {grid}x{grid} grid', 'use fewer seeds')
  if mode == 'multi':
    # A control still runs on the 2-rule layout, so its states render like the pairings'.
    x = st.model.seed(seeds, size)
    step = st.step
    view = (lambda s: s) if adversary is not None else (
        lambda s: tf.concat([s, tf.zeros_like(s[..., :1])], -1))
  else:
    x = original.seed(seeds, size)
    grow, fixed_step = st.grow, st.fixed_step
    mask = tf.zeros_like(x[..., :1])
    view = lambda s: _to_multi_fixed(s, mask)  # noqa: E731  (reads the current mask)

  rows = {name: [] for name in METRIC_NAMES}
  kept_steps, kept = [], []

  target_t = None if target is None else tf.constant(target, tf.float32)

  def observe(t, state):
    v = view(state)
    m = _metrics(v, target_t)
    for name in METRIC_NAMES:
      rows[name].append(m[name].numpy() if name in m else np.full([seeds], np.nan, np.float32))
    if t in keep:
      kept_steps.append(t)
      # Every seed at the record steps; the GIF shows sample 0 only.
      kept.append(v.numpy() if t in record_set else v[:1].numpy())

  damages = [dmg.parse_damage(d) for d in damages]
  outside = [d for d in damages if not 1 <= d.step <= total]
  if outside:
    raise TakeoverError(f'damage at step {outside[0].step} is outside the rollout: steps 1 to '
                        f'{total}')

  def hurt(t, x):
    for d in damages:
      if d.step == t:
        alpha = (tf.reduce_sum(x[..., layout.multi_alpha(0):], -1) if mode == 'multi' else
                 x[..., layout.ALPHA])
        x = dmg.damage(x, dmg.damage_mask(d, alpha, padding, rng))
    return x

  no_injection = 0
  if steps_before == 0 and adversary is not None:  # inject into the seed itself
    x, mask, no_injection = _inject(x, spec, padding, rng, mode, lenient)
  observe(0, x)
  for t in range(1, total + 1):
    if mode == 'multi':
      x = step(x)
    else:
      x = grow(x) if t <= steps_before else fixed_step(x, mask)
    if t == steps_before and steps_before > 0 and adversary is not None:
      x, mask, no_injection = _inject(x, spec, padding, rng, mode, lenient)
    x = hurt(t, x)
    observe(t, x)

  record_idx = [kept_steps.index(t) for t in record]
  result = TakeoverResult(
      steps=np.arange(total + 1), metrics={k: np.stack(v) for k, v in rows.items()},
      record_steps=record, states=np.stack([kept[i] for i in record_idx]),
      injection_step=steps_before if adversary is not None else None,
      convention=convention.name)
  result.info['no_injection'] = no_injection
  result.info['damage_steps'] = sorted({d.step for d in damages})
  gif_idx = [i for i, t in enumerate(kept_steps) if t in gif_steps]
  result.info['gif_steps'] = [kept_steps[i] for i in gif_idx]
  result.info['gif_states'] = np.stack([kept[i][:1] for i in gif_idx])
  return result


@dataclasses.dataclass
class _Stepper:
  """The traced steps of one (original, adversary, mode, fire rate), kept across calls so that
  repeated evaluations (a training run's validations) trace once per shape, not per call."""
  rng: tf.random.Generator
  refs: tuple  # the models: kept alive, so that their ids stay theirs while cached
  model: object = None
  step: object = None
  grow: object = None
  fixed_step: object = None


_STEPPERS = collections.OrderedDict()


def _stepper(original, adversary, mode, fire_rate):
  """The cached `_Stepper` of (original, adversary, mode, fire rate) (`rollout.lru_get`)."""
  def make():
    rng = tf.random.Generator.from_seed(0)
    st = _Stepper(rng=rng, refs=(original, adversary))
    if mode == 'multi':
      model = multi.MultiNCA([original] if adversary is None else [original, adversary])
      st.model = model
      st.step = tf.function(lambda s: model(s, fire_rate=fire_rate, rng=rng))
    else:
      fixed = multi.FixedMaskNCA(original, adversary)
      st.grow = tf.function(lambda s: original(s, fire_rate=fire_rate, rng=rng))
      st.fixed_step = tf.function(lambda s, m: fixed(s, m, fire_rate=fire_rate, rng=rng))
    return st
  return rollout.lru_get(_STEPPERS, (id(original), id(adversary), mode, fire_rate), make)


@tf.function
def _metrics(v, target):
  return metrics.takeover_metrics(v, target)


def _inject(x, spec, padding, rng, mode, lenient=False):
  """Injects after growth; returns (state, fixed mask, samples that got no adversary cell)."""
  probe = x if mode == 'multi' else multi.to_multi(x, 2)
  if spec['kind'] == 'square' and not lenient:
    fits = inj.square_centres_available(probe, spec['side'], padding).numpy()
    if not fits.all():
      bad = np.nonzero(~fits)[0].tolist()
      raise TakeoverError(
          f"a {spec['side']}x{spec['side']} square does not fit inside the organism of "
          f'sample(s) {bad} at injection time; use a smaller side or a spray')
  mask = inj.injection_mask(probe, spec, padding, rng)
  missed = int(tf.reduce_sum(tf.cast(tf.reduce_max(mask, [1, 2, 3]) == 0.0, tf.int32)))
  return (inj.inject(x, mask) if mode == 'multi' else x), mask, missed


# Outputs.

def marks_of(result):
  """{step: 'injected' | 'damaged'} of a `TakeoverResult`, for its strip's labels."""
  marks = {t: 'damaged' for t in result.info.get('damage_steps', [])}
  if result.injection_step is not None:
    marks[result.injection_step] = ('injected' if result.injection_step not in marks else
                                    'injected, damaged')
  return marks


def summary(result, steps=(100, 200, 560)):
  """{step: {metric: (mean, std)}} at the given steps (those inside the rollout)."""
  return {int(s): result.at(s) for s in steps if s <= result.steps[-1]}


def write_outputs(result, workdir, name='takeover', info=None, tensorboard=True,
                  report_steps=(100, 200, 560)):
  """Writes metrics JSON and CSV, TensorBoard scalars and images, the strip PNG and a GIF.

  Returns:
    dict of the written paths.
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  seeds = result.metrics['alive'].shape[1]
  doc = {
      'name': name, 'convention': result.convention, 'seeds': int(seeds),
      'injection_step': result.injection_step,
      'damage_steps': result.info.get('damage_steps', []), 'info': info or {},
      'summary': {str(k): {m: {'mean': v[0], 'std': v[1]} for m, v in d.items()}
                  for k, d in summary(result, report_steps).items()},
      'steps': result.steps.tolist(),
      'per_step': {k: {'mean': np.nanmean(v, 1).tolist(), 'std': np.nanstd(v, 1).tolist(),
                       'per_seed': v.T.tolist()}
                   for k, v in result.metrics.items() if not np.isnan(v).all()},
  }
  paths = {'json': workdir / f'{name}_metrics.json', 'csv': workdir / f'{name}_metrics.csv',
           'strip': workdir / f'{name}_strip.png', 'gif': workdir / f'{name}.gif'}
  fileio.write_text(paths['json'], json.dumps(doc, indent=1))
  names = [k for k in METRIC_NAMES if not np.isnan(result.metrics[k]).all()]
  lines = [['step'] + [f'{k}_{s}' for k in names for s in ('mean', 'std')]]
  for i, t in enumerate(result.steps):
    row = [int(t)]
    for k in names:
      row += [float(np.mean(result.metrics[k][i])), float(np.std(result.metrics[k][i]))]
    lines.append(row)
  buf = io.StringIO()
  csv.writer(buf, lineterminator='\n').writerows(lines)
  fileio.write_text(paths['csv'], buf.getvalue())

  strip = render.evolution_strip(result.states[:, 0], result.convention,
                                 steps=result.record_steps, marks=marks_of(result))
  render.save_png(strip, paths['strip'])
  frames = result.info['gif_states'][:, 0]
  gif = [render.title(np.concatenate([render.zoom(render.state_to_rgb(f, result.convention), 4),
                                      render.zoom(render.cell_mask_rgb(f), 4)], 1), f't = {t}')
         for f, t in zip(frames, result.info['gif_steps'])]
  render.save_gif(gif, paths['gif'])

  if tensorboard:
    tb = workdir / 'tensorboard'
    writer = tf.summary.create_file_writer(str(tb))
    with writer.as_default():
      for i, t in enumerate(result.steps):
        for k in names:
          tf.summary.scalar(f'{name}/{k}', float(np.mean(result.metrics[k][i])), step=int(t))
      tf.summary.image(f'{name}/strip', strip[None], step=int(result.steps[-1]))
    writer.flush()
    writer.close()
    paths['tensorboard'] = tb
  return paths


def run_named(workdir, name='takeover', steps_before=60, steps_after=500, seeds=8, seed=0,
              mode='multi', gif_every=5, damages=(), log=lambda line: None, **names):
  """Resolves `names` (`hub.load_pairing`'s arguments), runs the takeover (with `damages`,
  `damage.Damage`s) and writes every output to `workdir`; the strip gets a frame at each
  damage step and the one after it. `log` gets the target used and each overridden record.

  Returns:
    (TakeoverResult, {output: path}).
  """
  r = hub.load_pairing(**names)
  for line in r.messages:
    log(line)
  log(f'target: {r.target or "none"} ({r.target_source})')
  total = steps_before + steps_after
  record = sorted(set(default_record_steps(steps_before, steps_after)) |
                  {t for d in damages for t in (d.step, d.step + 1) if t <= total})
  result = run_takeover(r.original, r.adversary, r.injection, r.target_array,
                        steps_before=steps_before, steps_after=steps_after, seeds=seeds,
                        seed=seed, mode=mode, gif_every=gif_every, record_steps=record,
                        damages=damages)
  info = dict(original=r.original_name, adversary=r.adversary_name, injection=r.injection,
              target=r.target, target_source=r.target_source, mode=mode, seed=seed,
              steps_before=steps_before, steps_after=steps_after, damages=[str(d) for d in damages])
  report = [s for s in (100, 200, steps_before + steps_after) if s <= steps_before + steps_after]
  paths = write_outputs(result, workdir, name=name, info=info, report_steps=report)
  return result, paths


def report(workdir, pairings=None, seeds=8, seed=0, steps_before=60, steps_after=500,
           report_steps=(100, 200, 560), log=print):
  """Runs every pairing and its control, writes `report.md` and `report.json` to `workdir`.

  Returns:
    {row name: {step: {metric: (mean, std)}}}.
  """
  workdir = pathlib.Path(workdir)
  # Only the steps inside the rollout (a short one has no step 200).
  report_steps = sorted({t for t in report_steps if t <= steps_before + steps_after} |
                        {steps_before + steps_after})
  rows = {}
  for short in pairings or sorted(hub.PAIRINGS):
    for control in (False, True):
      name = short + ('_control' if control else '')
      result, _ = run_named(workdir / name, name=name, steps_before=steps_before,
                            steps_after=steps_after, seeds=seeds, seed=seed, pairing=short,
                            control=control)
      rows[name] = summary(result, report_steps)
      log(f'{name}: ' + ', '.join(
          f"t={t} orig {v['original_fraction'][0]:.3f}" for t, v in rows[name].items()))
  last = max(report_steps)
  header = ('| run | ' + ' | '.join(f'orig. fraction t={t}' for t in report_steps) +
            f' | alive t={last} | MSE t={last} |')
  lines = [f'Takeover of every published pairing and its control: {seeds} seeds, injection '
           f'after step {steps_before}, mean ± std over seeds.', '', header,
           '|' + '---|' * (len(report_steps) + 3)]
  for name, d in rows.items():
    cells = [f"{d[t]['original_fraction'][0]:.3f} ± {d[t]['original_fraction'][1]:.3f}"
             if t in d else '-' for t in report_steps]
    alive = d[last]['alive']
    mse = d[last]['mse']
    mse_text = '-' if mse[0] != mse[0] else f'{mse[0]:.4f} ± {mse[1]:.4f}'
    lines.append(f'| {name} | ' + ' | '.join(cells) +
                 f' | {alive[0]:.0f} ± {alive[1]:.0f} | {mse_text} |')
  fileio.write_text(workdir / 'report.md', '\n'.join(lines) + '\n')
  fileio.write_text(workdir / 'report.json', json.dumps(
      {n: {str(t): v for t, v in d.items()} for n, d in rows.items()}, indent=1))
  return rows
