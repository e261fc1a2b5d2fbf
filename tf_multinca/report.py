"""The reproduction report: `results/REPORT.md` and its figures, from the zoo's files alone.

`write_report(results_dir)` reads every entry's `run.json` and strips (no model is loaded, no
step is run: seconds, offline), and writes `REPORT.md` with one table per kind of experiment
(fig. 12's static takeovers, fig. 14's growing organisms kept alive) and a figure per
experiment under `figures/`: our takeover above the published adversary's on the same seeds,
and the control for the dynamic ones.
"""

import csv
import dataclasses
import io
import pathlib

import numpy as np
from PIL import Image
from PIL import ImageDraw

from tf_multinca import fileio
from tf_multinca import injection
from tf_multinca import render
from tf_multinca import text
from tf_multinca import zoo

REPORT_FILE = 'REPORT.md'
FIGURES_DIR = 'figures'
PERTURBATION_TABLE = 'perturbation/table.csv'
PERTURBATION_COLUMNS = ('regime', 'rate', 'steps', 'reached_loss_criterion', 'final_loss',
                        'weight_distance', 'cosine_similarity', 'complete', 'seeds',
                        'mse_mean', 'wall_s')
# Fig. 15 as the authors plotted it (their plotting notebook): {regime: {injected share:
# (|dw| RMS, cosine similarity, final loss)}}, drawn as the dashed reference.
PAPER_FIG15 = {
    'perturbation_random_l3': {0.8: (.044, .97, .007), 0.5: (.04, .96, .009),
                               0.25: (.06, .93, .008), 0.05: (.1, .83, .001)},
    'perturbation_copy_l3': {0.8: (.05, .96, .004), 0.5: (.067, .93, .0047),
                             0.25: (.074, .92, .009), 0.05: (.13, .80, .009)},
    'perturbation_copy': {0.8: (.078, .91, .003), 0.5: (.091, .88, .005),
                          0.25: (.13, .77, .003), 0.05: (.17, .68, .007)},
    'perturbation_random': {0.8: (.21, .002, .004), 0.5: (.22, .014, .003),
                            0.25: (.23, .008, .003), 0.05: (.30, .009, .014)},
}
_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]
_SECTIONS = (
    ('static', 'Static experiments (fig. 12): change the colour or the shape'),
    ('dynamic', 'Dynamic experiments (fig. 14): a growing organism kept alive'),
    ('perturbation', 'Adversaries close to the original (fig. 15)'),
    ('testing', 'Testing entries (tiny configs, not results)'),
)


def _fmt(mean, std, worst=None, digits=4):
  text = f'{mean:.{digits}f} ± {std:.{digits}f}'
  return text if worst is None else f'{text} (worst {worst:.{digits}f})'


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
    train = (str(t.steps), f'{text.hms(t.wall_s)}' + (f' ({t.s_per_step:.2f} s/step)'
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
    lines += ['', f'Trained {t.steps} steps in {text.hms(t.wall_s)}.', '']
  return lines


def _spray_rate(record):
  """The spray rate in [0, 1] of a fig. 15 cell's injection ('spray:0.8' or 'spray:80%')."""
  return injection.parse_injection(record.config['injection'])['rate']


def perturbation_rows(records):
  """One row per fig. 15 cell (`PERTURBATION_COLUMNS`), from the records of kind
  'perturbation' (regime: the config name; rate: the spray rate of its injection)."""
  rows = []
  for r in records:
    rate = _spray_rate(r)
    m = r.ours.at(r.protocol.ages[-1])
    rows.append({'regime': r.config_name, 'rate': rate, 'steps': r.training.steps,
                 'reached_loss_criterion': r.training.met_stop_rule,
                 'final_loss': r.training.final_loss,
                 'weight_distance': r.ours.weight_distance,
                 'cosine_similarity': r.ours.cosine_similarity, 'complete': m.complete(),
                 'seeds': len(m.original_fraction), 'mse_mean': m.stats('mse')[0],
                 'wall_s': r.training.wall_s})
  return sorted(rows, key=lambda x: (x['regime'], -x['rate']))


PENALISED = (('perturbation_random_l3', 'perturbation_random'),
             ('perturbation_copy_l3', 'perturbation_copy'))  # (with l3, without), per init
FAR_COSINE = 0.2  # random init without the penalty ends this far from the original, or farther


@dataclasses.dataclass(frozen=True)
class Claim:
  """One claim of fig. 15 checked on a table: what, whether it holds (on every cell it needs),
  whether the cells present contradict it, and the figures behind it."""
  text: str
  holds: bool
  detail: str
  contradicted: bool = False


def perturbation_claims(rows):
  """The paper's fig. 15 claims, checked on `rows` ({'regime', 'rate', 'weight_distance',
  'cosine_similarity'}; `perturbation_rows` or the committed table).

  1. At every rate, the penalty gives a smaller |dw| and a larger cosine, for both inits.
  2. With the penalty, |dw| grows as the injected share falls from 80 % to 5 %: every cell
     below 50 % is above every cell at 50 % or more, and 5 % is the largest. (Not step by
     step: the paper's own random-init values dip from 80 to 50 %, 0.044 then 0.040.)
  3. Random init without the penalty ends far from the original (cosine < 0.2).

  Returns:
    [Claim]; a claim whose cells are missing from `rows` does not hold (its detail says
    which), and is `contradicted` only where the cells present go against it.
  """
  cell = {(r['regime'], float(r['rate'])): r for r in rows}
  # The paper's rates, and any other in `rows`: a rate with no cell yet is a missing cell.
  rates = sorted({rate for cells in PAPER_FIG15.values() for rate in cells} |
                 {float(r['rate']) for r in rows}, reverse=True)
  claims = []
  for penalised, free in PENALISED:
    bad, missing = [], []
    for rate in rates:
      a, b = cell.get((penalised, rate)), cell.get((free, rate))
      if a is None or b is None:
        missing.append(f'{rate * 100:g} %')
      elif not (float(a['weight_distance']) < float(b['weight_distance']) and
                float(a['cosine_similarity']) > float(b['cosine_similarity'])):
        bad.append(f"{rate * 100:g} %: |dw| {float(a['weight_distance']):.3f} vs "
                   f"{float(b['weight_distance']):.3f}, cosine {float(a['cosine_similarity']):.3f}"
                   f" vs {float(b['cosine_similarity']):.3f}")
    init = penalised.split('_')[1]
    claims.append(Claim(f'{init} init: the penalty gives a smaller |dw| and a larger cosine at '
                        'every rate', bool(rates) and not bad and not missing,
                        '; '.join(bad + [f'missing {m}' for m in missing]) or 'at every rate',
                        contradicted=bool(bad)))
  for penalised, _ in PENALISED:
    series = [cell.get((penalised, rate)) for rate in rates]
    present = [r for r in series if r is not None]
    d = [float(r['weight_distance']) for r in present]  # highest rate first
    high = [x for x, r in zip(d, present) if float(r['rate']) >= 0.5]
    low = [x for x, r in zip(d, present) if float(r['rate']) < 0.5]
    grows = (len(present) == len(rates) and bool(high) and bool(low) and
             min(low) > max(high) and d[-1] == max(d))
    lowest_present = bool(present) and series[-1] is not None
    against = ((bool(high) and bool(low) and min(low) <= max(high)) or
               (lowest_present and d[-1] != max(d)))
    detail = ', '.join(f"{float(r['rate']) * 100:g} % {float(r['weight_distance']):.3f}"
                       for r in present)
    claims.append(Claim(f'{penalised}: |dw| grows as the injected share falls', grows,
                        detail or 'no cells', contradicted=against))
  free = [cell.get(('perturbation_random', rate)) for rate in rates]
  cos = [float(r['cosine_similarity']) for r in free if r is not None]
  claims.append(Claim(f'random init without the penalty ends far from the original (cosine '
                      f'< {FAR_COSINE})', bool(cos) and len(cos) == len(rates) and
                      max(cos) < FAR_COSINE, 'cosines ' + ', '.join(f'{c:.3f}' for c in cos),
                      contradicted=bool(cos) and max(cos) >= FAR_COSINE))
  return claims


SETTING_FIELDS = ('adversary_init', 'l3', 'l3_distance', 'l2', 'steps', 'lr_boundaries',
                  'stop_loss', 'rollout_min', 'rollout_max', 'weight_average')


def _perturbation_settings(records):
  """The settings that tell the regimes apart, one row per regime, read from the cells'
  configs: a regime whose cells differ in them shows each distinct setting, with the injected
  shares of the cells that trained with it."""
  lines = ['| regime | cells (injected) | ' + ' | '.join(SETTING_FIELDS) + ' |',
           '|---|---|' + '---|' * len(SETTING_FIELDS)]
  by_regime = {}
  for r in records:
    row = tuple(str(r.config.get(f, '-')) for f in SETTING_FIELDS)
    rate = _spray_rate(r)
    by_regime.setdefault(r.config_name, {}).setdefault(row, []).append(rate)
  for regime in sorted(by_regime):
    for row, rates in by_regime[regime].items():
      shares = ', '.join(f'{x * 100:g} %' for x in sorted(rates, reverse=True))
      lines.append(f'| {regime} | {shares} | ' + ' | '.join(row) + ' |')
  return ['', 'Settings per regime (from the cells\' configs; the comments of '
          '`tf_multinca/configs/adversary.py` give the measured reasons; `-`: a field added '
          'after the cell was trained, which trained with its default):', ''] + lines


# The fig. 15 claims that our committed cells contradict, by `Claim.text`, each with what we
# measured. Reported, not hidden: REPORT.md prints the reason beside the verdict, and the
# committed-table test requires the contradicted claims to be exactly these, so a new
# contradiction, or a retrained cell that removes one, fails it until this entry is updated.
NOT_REPRODUCED = {}  # none: every claim holds on the committed cells (session 22)


def claim_line(claim):
  """REPORT.md's line for one claim: the verdict, the figures, and for a claim listed in
  `NOT_REPRODUCED` what we measured."""
  if claim.holds:
    verdict = 'holds'
  else:
    verdict = '**contradicted**' if claim.contradicted else 'not shown yet (cells missing)'
  why = NOT_REPRODUCED.get(claim.text) if claim.contradicted else None
  return f'- {verdict}: {claim.text} ({claim.detail})' + (f'. {why}.' if why else '')


def _perturbation_table(records, root):
  rows = perturbation_rows(records)
  buf = io.StringIO()
  w = csv.DictWriter(buf, PERTURBATION_COLUMNS, lineterminator='\n')
  w.writeheader()
  w.writerows(rows)
  fileio.write_text(root / PERTURBATION_TABLE, buf.getvalue())
  lines = ['| regime | injected | steps | loss < 0.01 | final loss | \\|dw\\| (paper) | cosine '
           '(paper) | complete | train wall time |', '|---|---|---|---|---|---|---|---|---|']
  for x in rows:
    ref = PAPER_FIG15.get(x['regime'], {}).get(x['rate'])
    paper = (lambda i: f' ({ref[i]:g})' if ref else '')
    loss = '-' if x['final_loss'] is None else f"{x['final_loss']:.4f}"
    lines.append(f"| {x['regime']} | {x['rate'] * 100:g} % | {x['steps']} | "
                 f"{'yes' if x['reached_loss_criterion'] else 'no (step cap)'} | {loss} | "
                 f"{x['weight_distance']:.3f}{paper(0)} | {x['cosine_similarity']:.3f}{paper(1)}"
                 f" | {x['complete']}/{x['seeds']} | {text.hms(x['wall_s'])} |")
  png = plot_perturbation(rows, PAPER_FIG15)
  fileio.write_file(root / FIGURES_DIR / 'perturbation.png',
                    lambda p: png.save(p, format='PNG'), suffix='.png')
  claims = ['', 'The paper\'s claims on this table:', '']
  claims += [claim_line(c) for c in perturbation_claims(rows)]
  return lines + claims + _perturbation_settings(records) + [
      '', f'Table: `{PERTURBATION_TABLE}`.', '', f'![fig. 15]({FIGURES_DIR}/perturbation.png)', '']


def _bound(check, limit):
  """What a verdict check compares with: the alive count is a band around the published one."""
  if check == zoo.ALIVE_CHECK:
    return f'published {limit:.4g}, within {zoo.ALIVE_TOLERANCE:.0%}'
  if check == zoo.CONTROL_CHECK:
    return f'published {limit:.4g}, outside {zoo.ALIVE_TOLERANCE:.0%}'
  return f'limit {limit:.4g}'


def _verdicts(records):
  lines = ['| experiment | bar | checks |', '|---|---|---|']
  for r in records:
    checks = '; '.join(f'{name} {ours:.4g} ({_bound(name, limit)}) {"ok" if ok else "FAIL"}'
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
              '20 % of it and the control\'s outside that band, decayed, vanished or exploded '
              '(dynamic).', '']
  fig_dir = root / FIGURES_DIR
  for kind, title in _SECTIONS:
    group = [r for r in records if r.kind == kind]
    if not group:
      continue
    lines += [f'## {title}', '']
    if kind == 'perturbation':
      lines += _perturbation_table(group, root)
      lines += ['### Against the bar', ''] + _verdicts(group) + ['']
      continue
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


def plot_perturbation(rows, reference=None, panel=(320, 240)):
  """Fig. 15 as a Pillow image: |dw| and cosine similarity against the spray rate, one solid
  line per regime (rates on a categorical axis, largest first as in the paper).

  Args:
    rows: dicts with 'regime', 'rate', 'weight_distance', 'cosine_similarity'.
    reference: {regime: {rate: (|dw|, cosine, loss)}}: drawn as dashed lines with hollow
      points in the regime's colour (the paper's values), or None.
  """
  rates = sorted({r['rate'] for r in rows}, reverse=True)
  regimes = list(dict.fromkeys(r['regime'] for r in rows))
  pw, ph = panel
  margin_l, margin_b, margin_t, legend_h = 56, 36, 24, 16 * len(regimes) + 8
  img = Image.new('RGB', (2 * pw, ph + legend_h), 'white')
  draw = ImageDraw.Draw(img)
  for p, (key, title) in enumerate((('weight_distance', '|dw| (RMS)'),
                                    ('cosine_similarity', 'cosine similarity'))):
    x0, y0 = p * pw + margin_l, margin_t
    x1, y1 = (p + 1) * pw - 12, ph - margin_b
    ref_rows = [{'regime': g, 'rate': p, 'weight_distance': v[0], 'cosine_similarity': v[1]}
                for g, by_rate in (reference or {}).items() if g in regimes
                for p, v in by_rate.items() if p in rates]
    values = np.array([r[key] for r in rows + ref_rows], np.float64)
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-9:
      lo, hi = lo - 0.5 * abs(lo or 1) * 0.1, hi + 0.5 * abs(hi or 1) * 0.1
    draw.rectangle([x0, y0, x1, y1], outline='black')
    draw.text((x0, 4), title, fill='black')
    for frac in (0.0, 0.5, 1.0):
      y = y1 - frac * (y1 - y0)
      draw.text((p * pw + 2, y - 6), f'{lo + frac * (hi - lo):.3g}', fill='black')
    xs = {rate: x0 + (i + 0.5) * (x1 - x0) / len(rates) for i, rate in enumerate(rates)}
    for rate, x in xs.items():
      draw.text((x - 10, y1 + 4), f'{rate * 100:g}%', fill='black')
    draw.text(((x0 + x1) // 2 - 40, y1 + 18), 'adversaries injected', fill='black')
    for j, regime in enumerate(regimes):
      pts = [(xs[r['rate']], y1 - (r[key] - lo) / (hi - lo) * (y1 - y0))
             for r in sorted((r for r in rows if r['regime'] == regime),
                             key=lambda r: -r['rate'])]
      colour = _COLOURS[j % len(_COLOURS)]
      if len(pts) > 1:
        draw.line(pts, fill=colour, width=2)
      for x, y in pts:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
      ref = [(xs[r['rate']], y1 - (r[key] - lo) / (hi - lo) * (y1 - y0))
             for r in sorted((r for r in ref_rows if r['regime'] == regime),
                             key=lambda r: -r['rate'])]
      for (xa, ya), (xb, yb) in zip(ref, ref[1:]):
        for f in np.arange(0.0, 1.0, 0.2):  # dashes
          draw.line([(xa + (xb - xa) * f, ya + (yb - ya) * f),
                     (xa + (xb - xa) * (f + 0.1), ya + (yb - ya) * (f + 0.1))], fill=colour,
                    width=1)
      for x, y in ref:
        draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline=colour)
  for j, regime in enumerate(regimes):
    y = ph + 4 + 16 * j
    draw.rectangle([margin_l, y + 3, margin_l + 14, y + 11], fill=_COLOURS[j % len(_COLOURS)])
    draw.text((margin_l + 20, y), regime + ('  (solid: ours, dashed: the paper)' if reference
                                            and j == 0 else ''), fill='black')
  return img
