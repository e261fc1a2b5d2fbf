"""Fig. 15's perturbation sweep: training regimes times spray rates; a table and a plot.

Each cell of the grid is one training run (resumable) in `<workdir>/<regime>/spray_<pct>`; the
table reads their metrics.json, so an interrupted sweep continues where it stopped.
"""

import csv
import io as py_io
import json
import pathlib

import numpy as np
from PIL import Image
from PIL import ImageDraw

from tf_multinca import configs
from tf_multinca.configs import adversary as adversary_configs
from tf_multinca import fileio as io
from tf_multinca.training import loop

DEFAULT_RATES = (0.5, 0.25, 0.1, 0.05)
COLUMNS = ('regime', 'rate', 'steps', 'weight_distance', 'cosine_similarity',
           'original_fraction', 'mse', 'wall_s')
_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def run_dir(workdir, regime, rate):
  return pathlib.Path(workdir) / regime / f'spray_{rate * 100:g}pct'


def run_sweep(workdir, regimes=adversary_configs.PERTURBATION_REGIMES, rates=DEFAULT_RATES,
              overrides=(), log=print):
  """Trains every regime at every rate (resuming), then writes the table and the plot.

  Args:
    workdir: the sweep's directory.
    regimes: config names (fig. 15's four by default; `_testing` variants work too).
    rates: spray rates in (0, 1].
    overrides: `key=value` overrides applied to every run.

  Returns:
    {'rows': [...], 'csv': path, 'markdown': path, 'png': path}.
  """
  # Validate every config before touching the workdir.
  runs = [(r, p, configs.get_config(r, list(overrides) + [f'injection=spray:{p}']))
          for r in regimes for p in rates]
  rows = []
  for regime, rate, config in runs:
    d = run_dir(workdir, regime, rate)
    log(f'--- {regime}, spray {rate * 100:g}% -> {d}')
    doc = loop.train(config, d, log=log)
    rows.append(_row(regime, rate, doc))
  return write_outputs(workdir, rows)


def _row(regime, rate, doc):
  e = doc['eval']
  return {'regime': regime, 'rate': rate, 'steps': doc['steps'],
          'weight_distance': e['weight_distance'], 'cosine_similarity': e['cosine_similarity'],
          'original_fraction': e['original_fraction'], 'mse': e['mse'],
          'wall_s': doc['wall_s_this_session']}


def write_outputs(workdir, rows):
  """Writes sweep.csv, sweep.md, sweep.json and sweep.png; returns their paths and the rows."""
  workdir = pathlib.Path(workdir)
  buf = py_io.StringIO()
  w = csv.DictWriter(buf, COLUMNS)
  w.writeheader()
  w.writerows(rows)
  csv_path = io.write_text(workdir / 'sweep.csv', buf.getvalue())
  lines = ['| regime | spray | steps | |Δw| | cosine | orig. fraction | MSE |',
           '|---|---|---|---|---|---|---|']
  for r in rows:
    lines.append(f"| {r['regime']} | {r['rate'] * 100:g}% | {r['steps']} | "
                 f"{r['weight_distance']:.4f} | {r['cosine_similarity']:.4f} | "
                 f"{r['original_fraction']:.3f} | {r['mse']:.4f} |")
  md_path = io.write_text(workdir / 'sweep.md', '\n'.join(lines) + '\n')
  io.write_text(workdir / 'sweep.json', json.dumps(rows, indent=1))
  png = plot(rows)
  png_path = io.write_file(workdir / 'sweep.png', lambda p: png.save(p, format='PNG'),
                           suffix='.png')
  return {'rows': rows, 'csv': str(csv_path), 'markdown': str(md_path), 'png': str(png_path)}


def plot(rows, panel=(320, 240)):
  """Fig. 15 as a Pillow image: |Δw| and cosine similarity against the spray rate, one line
  per regime (rates on a categorical axis, largest first as in the paper)."""
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
    values = np.array([r[key] for r in rows], np.float64)
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
  for j, regime in enumerate(regimes):
    y = ph + 4 + 16 * j
    draw.rectangle([margin_l, y + 3, margin_l + 14, y + 11], fill=_COLOURS[j % len(_COLOURS)])
    draw.text((margin_l + 20, y), regime, fill='black')
  return img
