"""Fig. 15's perturbation sweep: training regimes times spray rates; a table and a plot.

Each cell of the grid is one training run (resumable) in `<workdir>/<regime>/spray_<pct>`; the
table reads their metrics.json, so an interrupted sweep continues where it stopped.
"""

import csv
import io as py_io
import json
import pathlib
import sys

from tf_multinca import configs
from tf_multinca.configs import adversary as adversary_configs
from tf_multinca import fileio as io
from tf_multinca import figures
from tf_multinca import report
from tf_multinca.training import fanout
from tf_multinca.training import loop

DEFAULT_RATES = adversary_configs.PERTURBATION_RATES
LOG_FILE = 'train.log'  # a fanned-out run's output, in its run directory
COLUMNS = ('regime', 'rate', 'steps', 'weight_distance', 'cosine_similarity',
           'original_fraction', 'mse', 'wall_s')


def run_dir(workdir, regime, rate):
  return pathlib.Path(workdir) / regime / f'spray_{rate * 100:g}pct'


def run_sweep(workdir, regimes=adversary_configs.PERTURBATION_REGIMES, rates=DEFAULT_RATES,
              overrides=(), log=print, parallel=1):
  """Trains every regime at every rate (resuming), then writes the table and the plot.

  Args:
    workdir: the sweep's directory.
    regimes: config names (fig. 15's four by default; `_testing` variants work too).
    rates: spray rates in (0, 1].
    overrides: `key=value` overrides applied to every run.
    parallel: runs trained at once, each in its own process (`tools.train_adversary` on its
      run directory, logging to `<run dir>/train.log`); 1 trains them here in turn.

  Returns:
    {'rows': [...], 'csv': path, 'markdown': path, 'png': path}.

  Raises:
    fanout.FanoutError: a process of a fan-out failed (the others ran to their end).
  """
  # Validate every config before touching the workdir.
  runs = [(r, p, list(overrides) + [f'injection=spray:{p}']) for r in regimes for p in rates]
  built = [configs.get_config(r, extra) for r, _, extra in runs]
  if parallel > 1 and len(runs) > 1:
    jobs = []
    for regime, rate, extra in runs:
      d = run_dir(workdir, regime, rate)
      argv = [sys.executable, '-m', 'tf_multinca.apps.train_adversary', f'--config={regime}',
              f'--workdir={d.resolve()}'] + [f'--set={o}' for o in extra]
      jobs.append(fanout.Job(f'{regime}/spray_{rate * 100:g}pct', tuple(argv), d / LOG_FILE))
    fanout.run_jobs(jobs, parallel, log)
    docs = [json.loads((run_dir(workdir, r, p) / 'metrics.json').read_text(encoding='utf-8'))
            for r, p, _ in runs]
  else:
    docs = []
    for (regime, rate, _), config in zip(runs, built):
      d = run_dir(workdir, regime, rate)
      log(f'--- {regime}, spray {rate * 100:g}% -> {d}')
      docs.append(loop.train(config, d, log=log))
  return write_outputs(workdir, [_row(r, p, doc) for (r, p, _), doc in zip(runs, docs)])


def _row(regime, rate, doc):
  e = doc['eval']
  return {'regime': regime, 'rate': rate, 'steps': doc['steps'],
          'weight_distance': e['weight_distance'], 'cosine_similarity': e['cosine_similarity'],
          'original_fraction': e['original_fraction'], 'mse': e['mse'],
          'wall_s': doc['wall_s_this_session']}


def write_outputs(workdir, rows):
  """Writes sweep.csv, sweep.md, sweep.json and sweep.png (and .svg); returns their paths and
  the rows."""
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
  png_path, _ = figures.save(report.plot_perturbation(rows), workdir, 'sweep')
  return {'rows': rows, 'csv': str(csv_path), 'markdown': str(md_path), 'png': str(png_path)}
