"""The reproduction report: `results/REPORT.md` and its figures, from the zoo's files alone.

`write_report(results_dir)` reads every entry's `run.json` and strips (no model is loaded, no
step is run: seconds, offline), and writes `REPORT.md` with one table per kind of experiment
(fig. 12's static takeovers, fig. 14's growing organisms kept alive) and a figure per
experiment under `figures/`: our takeover above the published adversary's on the same seeds,
and the control for the dynamic ones.
"""

import pathlib

import numpy as np
from PIL import Image

from tf_multinca import fileio
from tf_multinca import render
from tf_multinca import zoo

REPORT_FILE = 'REPORT.md'
FIGURES_DIR = 'figures'
_SECTIONS = (
    ('static', 'Static experiments (fig. 12): change the colour or the shape'),
    ('dynamic', 'Dynamic experiments (fig. 14): a growing organism kept alive'),
    ('testing', 'Testing entries (tiny configs, not results)'),
)


def _fmt(mean, std, worst=None, digits=4):
  text = f'{mean:.{digits}f} ± {std:.{digits}f}'
  return text if worst is None else f'{text} (worst {worst:.{digits}f})'


def _hms(seconds):
  if seconds is None:
    return '-'
  seconds = int(round(seconds))
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


def _read_png(path):
  with Image.open(path) as im:
    return np.asarray(im.convert('RGB'), np.float32) / 255.0


def _stack(panels):
  """Stacks titled images vertically (left-aligned, white-padded to the widest)."""
  width = max(p.shape[1] for p in panels)
  rows = [np.pad(p, [(0, 4), (0, width - p.shape[1]), (0, 0)], constant_values=1.0)
          for p in panels]
  return np.concatenate(rows, 0)


def figure(entry_dir, record):
  """The experiment's figure: ours, the published adversary, the control (where present)."""
  d = pathlib.Path(entry_dir)
  panels = []
  titles = {'ours': f'ours: results/{record.experiment}',
            'published': f'published: {record.published.model}' if record.published else '',
            'control': 'control: the organism alone'}
  keys = ('control', 'ours', 'published') if record.kind == 'dynamic' else ('ours', 'published')
  for key in keys:
    path = d / zoo.STRIPS[key]
    if path.is_file():
      panels.append(render.title(_read_png(path), titles[key]))
  return _stack(panels) if panels else None


def _row(label, ev, age, record=None):
  m = ev.at(age)
  complete = f'{m.complete()}/{len(m.original_fraction)}'
  frac = _fmt(*m.stats('original_fraction'), digits=3)
  alive = f'{m.stats("alive")[0]:.0f} ± {m.stats("alive")[1]:.0f}'
  mse = _fmt(*m.stats('mse')) if m.mse else '-'
  train = ('-', '-')
  if record is not None:
    t = record.training
    train = (str(t.steps), f'{_hms(t.wall_s)}' + (f' ({t.s_per_step:.2f} s/step)'
                                                    if t.s_per_step else ''))
  return f'| {label} | {complete} | {frac} | {alive} | {mse} | {train[0]} | {train[1]} |'


def _static_table(records):
  lines = ['| adversary | complete takeovers | original fraction (mean ± std, worst) | alive | '
           'MSE to target (mean ± std, worst) | train steps | train wall time |',
           '|---|---|---|---|---|---|---|']
  for r in records:
    age = r.protocol.ages[-1]
    lines.append(_row(f'**ours** `results/{r.experiment}`', r.ours, age, r))
    if r.published is not None:
      lines.append(_row(f'published `{r.published.model}`', r.published, age))
  return lines


def _dynamic_table(records):
  lines = []
  for r in records:
    ages = r.protocol.ages
    head = '| adversary | ' + ' | '.join(
        f'orig. fraction t+{a} | alive t+{a} | MSE t+{a}' for a in ages) + ' |'
    lines += [f'**{r.experiment}** (target `{r.config["target"]}`)', '', head,
              '|---|' + '---|' * (3 * len(ages))]
    for label, ev in (('ours', r.ours), ('published', r.published), ('control', r.control)):
      if ev is None:
        continue
      cells = []
      for a in ages:
        m = ev.at(a)
        cells += [f'{m.stats("original_fraction")[0]:.3f}', f'{m.stats("alive")[0]:.0f}',
                  f'{m.stats("mse")[0]:.4f}' if m.mse else '-']
      lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    t = r.training
    lines += ['', f'Trained {t.steps} steps in {_hms(t.wall_s)}.', '']
  return lines


def _verdicts(records):
  lines = ['| experiment | bar | checks |', '|---|---|---|']
  for r in records:
    checks = '; '.join(f'{name} {ours:.4g} (limit {limit:.4g}) {"ok" if ok else "FAIL"}'
                       for name, ours, limit, ok in r.verdict.checks)
    lines.append(f'| {r.experiment} | {"**passes**" if r.verdict.passed else "fails"} | '
                 f'{checks} |')
  return lines


def write_report(results_dir=None):
  """Writes `<results_dir>/REPORT.md` and `figures/*.png` from the entries; returns the path."""
  root = pathlib.Path(results_dir) if results_dir is not None else zoo.results_dir()
  records = [zoo.read_record(root / n) for n in zoo.names(root)]
  lines = ['# Reproduction report', '',
           'Our own adversaries, trained with `python -m tools.train_adversary` / '
           '`tools.reproduce` from the named configs and kept in `results/`, next to the '
           "paper's published adversaries under the same evaluation. Regenerate with "
           '`python -m tools.reproduce --report_only` (reads only the committed files).', '']
  if not records:
    lines += ['No experiment has been trained yet: `python -m tools.reproduce`.']
  protocols = sorted({(r.protocol.seeds, r.protocol.seed, r.protocol.inject_at,
                       r.protocol.ages[-1]) for r in records})
  for seeds, seed, inject_at, age in protocols:
    lines.append(f'- Evaluation: {seeds} fresh organisms (generator seed {seed}, never used in '
                 f'training or validation), adversaries injected after step {inject_at}, '
                 f'measured {age} steps later; ours, the published adversary and the control '
                 'on the same seeds.')
  if records:
    lines += ['- A complete takeover leaves no mature original cell. The bar: complete in at '
              'least 31 of 32 seeds (or as many as the published adversary), mean MSE at most '
              '1.5x the published, worst seed at most 3x its worst (static), alive cells within '
              '20 % of it (dynamic).', '']
  fig_dir = root / FIGURES_DIR
  for kind, title in _SECTIONS:
    group = [r for r in records if r.kind == kind]
    if not group:
      continue
    lines += [f'## {title}', '']
    lines += (_static_table(group) if kind != 'dynamic' else _dynamic_table(group))
    lines += ['', '### Against the bar', ''] + _verdicts(group) + ['']
    for r in group:
      img = figure(root / r.experiment, r)
      if img is None:
        continue
      name = r.experiment.replace('/', '__') + '.png'
      render.save_png(img, fig_dir / name)
      commits = ', '.join(c[:12] for c in r.commits)
      lines += [f'### {r.experiment}', '', f'{r.config.get("description", "")}. Config '
                f'`{r.config_name}`, trained at {commits} on {r.training.machine}.', '',
                f'![{r.experiment}]({FIGURES_DIR}/{name})', '']
  return fileio.write_text(root / REPORT_FILE, '\n'.join(lines).rstrip() + '\n')
