"""Reproduce the paper: train its experiments, evaluate them, keep each in the results zoo.

    from tf_multinca.training import reproduce
    reproduce.run(['lizard_red', 'bug_to_butterfly'], 'runs/reproduce')

For each experiment (a named config): train it in `<workdir>/<name>` (resuming an interrupted
run), evaluate ours, the published adversary and the control on the same fresh seeds
(`EVAL_SEEDS` organisms, injection after `inject_min` steps, measured `AGES` steps later), and
write the entry `results/<name>/` (`zoo`). An experiment whose entry already holds the same
config is skipped. Then `report.write_report` rebuilds `results/REPORT.md`.
"""

import dataclasses
import json
import os
import pathlib
import platform
import re
import sys
import time


from tf_multinca import configs
from tf_multinca import errors
from tf_multinca import fileio
from tf_multinca import hub
from tf_multinca import render
from tf_multinca import report
from tf_multinca import takeover
from tf_multinca import targets
from tf_multinca import weights_file
from tf_multinca import zoo
from tf_multinca.configs import adversary as adversary_configs
from tf_multinca.training import evaluate
from tf_multinca.training import fanout
from tf_multinca.training import loop

# The paper's experiments and the bar each is held to: the configs list them.
EXPERIMENTS = adversary_configs.EXPERIMENTS
PAPER = tuple(EXPERIMENTS)
# Fig. 15: the four regimes times the spray rates, one entry per cell under
# results/perturbation/<regime>/spray_<pct>pct (`cells`).
PERTURBATION = 'perturbation'
# The tiny sweep of the tests: two regimes' testing variants at one rate.
PERTURBATION_TESTING = (('perturbation_copy_l3_testing', 0.5),
                        ('perturbation_random_testing', 0.5))
EVAL_SEEDS = 32  # organisms of the development evaluation (ours, published and control alike)
TEST_SEEDS = zoo.TEST_SEEDS  # organisms of the held-out test set (the report's headline)
AGES = (100, 200, 500)  # steps after injection kept in run.json (fig. 14's), the last decides
# Config fields that do not change what is trained: a results entry still matches without them.
PRESENTATION_FIELDS = frozenset({'description', 'log_every', 'summary_every', 'image_every',
                                 'checkpoint_every', 'keep_checkpoints', 'register',
                                 'test_seeds',
                                 'debug_nan_step'})  # (a removed field, in old records)


class ReproduceError(errors.Error, ValueError):
  """An experiment that cannot be run or collected as asked."""


def kind_of(name):
  """'static' | 'dynamic' | 'perturbation' for the paper's experiments, 'testing' for the
  `*_testing` variants ('perturbation_testing' is fig. 15's tiny sweep: 'perturbation'); one
  cell of a sweep, `perturbation/<regime>/spray_<pct>pct`, is 'perturbation' too."""
  if name in (PERTURBATION, PERTURBATION + '_testing') or _sweep_cell(name):
    return 'perturbation'  # its bar is the complete takeover alone, testing cells included
  if name.endswith('_testing') and name[:-len('_testing')] in EXPERIMENTS:
    return 'testing'
  if name not in EXPERIMENTS:
    raise ReproduceError(f'unknown experiment {name!r}; the paper\'s are '
                         f'{", ".join(PAPER + (PERTURBATION,))} (and their _testing variants, '
                         f'or one sweep cell such as {spray_entry(PERTURBATION_TESTING[0][0], 0.5)})')
  return EXPERIMENTS[name]


def _sweep_cell(name):
  """(regime, rate) of a sweep cell's entry `perturbation/<regime>/spray_<pct>pct`, or None."""
  m = re.fullmatch(PERTURBATION + r'/([a-z0-9_]+)/spray_(\d+(?:\.\d+)?)pct', name)
  if not m:
    return None
  regime, rate = m.group(1), float(m.group(2)) / 100
  known = set(adversary_configs.PERTURBATION_REGIMES) | {r for r, _ in PERTURBATION_TESTING}
  if regime not in known or not 0 < rate <= 1:
    return None
  return regime, rate


@dataclasses.dataclass(frozen=True)
class Cell:
  """One training run of the campaign and its zoo entry.

  Attributes:
    entry: its path under results/ ('lizard_red', 'perturbation/<regime>/spray_5pct').
    kind: the bar it is held to (`zoo.verdict`).
    config_name: the named config.
    overrides: `key=value` overrides on it (a cell's spray rate, then the user's).
    config: the resulting `TrainConfig`.
  """
  entry: str
  kind: str
  config_name: str
  overrides: tuple
  config: configs.TrainConfig


def _final_loss(doc):
  """The loss a run ends with, from its metrics.json: the validation score of the weights it
  kept (the `stop_loss` criterion's measure), else the mean training loss of its last log
  window (a run without validations)."""
  best = doc.get('best') or {}
  if best.get('used') and best.get('valid_score') is not None:
    return float(best['valid_score'])
  return doc.get('final_train_loss')


def spray_entry(regime, rate):
  """'perturbation/<regime>/spray_<pct>pct' of a fig. 15 cell."""
  return f'{PERTURBATION}/{regime}/spray_{rate * 100:g}pct'


def cells(experiments, overrides=()):
  """The runs of `experiments`: each named one, fig. 15's sixteen for 'perturbation', and one
  for a sweep cell's entry.

  Raises:
    ReproduceError, configs.ConfigError: an unknown name or a bad override.
  """
  out = []
  for name in experiments:
    kind = kind_of(name)
    if name in (PERTURBATION, PERTURBATION + '_testing') or _sweep_cell(name):
      grid = ([_sweep_cell(name)] if _sweep_cell(name) else
              PERTURBATION_TESTING if name.endswith('_testing') else
              [(r, p) for r in adversary_configs.PERTURBATION_REGIMES
               for p in adversary_configs.PERTURBATION_RATES])
      for regime, rate in grid:
        extra = (f'injection=spray:{rate:g}',) + tuple(overrides)
        out.append(Cell(spray_entry(regime, rate), kind, regime, extra,
                        configs.get_config(regime, extra)))
    else:
      out.append(Cell(name, kind, name, tuple(overrides), configs.get_config(name, overrides)))
  return out


def ages_of(config):
  """`AGES` below the config's `eval_steps`, then `eval_steps` itself (the verdict's age)."""
  return tuple(a for a in AGES if a < config.eval_steps) + (config.eval_steps,)


def _json(obj):
  return json.loads(json.dumps(obj))


def config_diff(record_config, config):
  """Fields (outside `PRESENTATION_FIELDS`) where a results entry's config and `config` differ.

  A field added after the entry was trained is absent from its config: it trained with the
  field's default.
  """
  new = _json(config.to_dict())
  defaults = _json({f.name: f.default for f in dataclasses.fields(configs.TrainConfig)})
  return sorted(k for k in set(record_config) | set(new)
                if k not in PRESENTATION_FIELDS
                and record_config.get(k, defaults.get(k)) != new.get(k))


# ----------------------------------------------------------------------------------------------
# Evaluation under the zoo's protocol.

def _machine():
  model = platform.processor() or platform.machine()
  try:
    for line in pathlib.Path('/proc/cpuinfo').read_text().splitlines():
      if line.startswith('model name'):
        model = line.split(':', 1)[1].strip()
        break
  except OSError:
    pass
  return f'{os.cpu_count()} cores, {model}'


def _assets(config):
  """(original, target, dev protocol) of `config`'s evaluations, in its convention."""
  conv = config.convention
  grid = loop.grid_side(config)
  original = hub.load(config.original, conv)
  target = targets.build_target(config.target, conv, grid, original=original,
                                fire_rate=config.fire_rate)
  protocol = zoo.Protocol(
      seeds=EVAL_SEEDS, seed=config.eval_seed, inject_at=config.inject_min,
      ages=ages_of(config), grid=grid,
      strip_steps=tuple(takeover.default_record_steps(config.inject_min, config.eval_steps)))
  return original, target, protocol


def _assess(config, kind, protocol, original, adversary, target, strips=False):
  """`evaluate.assess` of `adversary` under `protocol` (the published adversary of the config
  and the control on the same organisms). Without strips (the test set) the control is
  evaluated for the dynamic bar only, which reads it."""
  published = None
  if config.compare_with:
    published = (config.compare_with, hub.load(config.compare_with, config.convention))
  control = strips or kind == 'dynamic'
  return evaluate.assess(kind, protocol, original, adversary, config.injection, target,
                         config.fire_rate, published=published, control=control, strips=strips)


def _checks(verdict):
  return '; '.join(f'{c[0]} {c[1]:.4g} vs {c[2]:.4g}' for c in verdict.checks)


def collect(name, config, run_dir, results_dir=None, seeds=EVAL_SEEDS, log=print, kind=None,
            overrides=(), test_seeds=TEST_SEEDS):
  """Evaluates a finished training run and writes its zoo entry `results/<name>/`.

  The development evaluation (`seeds` organisms of the config's eval_seed, with strips) and the
  held-out test set (`test_seeds` organisms of `zoo.TEST_SEED`, read here only).

  Args:
    name: the entry's path under results/ (the experiment's name).
    config: the `TrainConfig` the run was trained with.
    kind: the bar it is held to (default: `kind_of(config.name)`).
    overrides: the `key=value` overrides `config` was built with (recorded).
    run_dir: the run's workdir (metrics.json, export/adversary.weights.h5).
    results_dir: the zoo (default `zoo.results_dir()`).
    seeds: organisms of the development evaluation.
    test_seeds: organisms of the test set.

  Returns:
    The written `zoo.RunRecord`.

  Raises:
    ReproduceError: the run is not finished.
  """
  run_dir = pathlib.Path(run_dir)
  results_dir = pathlib.Path(results_dir) if results_dir is not None else zoo.results_dir()
  try:
    doc = json.loads((run_dir / 'metrics.json').read_text(encoding='utf-8'))
  except (OSError, ValueError) as e:
    raise ReproduceError(f'{run_dir} holds no finished run ({e}); train it first') from None
  t = time.time()
  adversary = weights_file.load(run_dir / 'export' / 'adversary.weights.h5', config.convention)
  original, target, protocol = _assets(config)
  protocol = dataclasses.replace(protocol, seeds=seeds)
  kind = kind or kind_of(config.name)
  dev, strips = _assess(config, kind, protocol, original, adversary, target, strips=True)
  test, _ = _assess(config, kind, evaluate.held_out_protocol(protocol, test_seeds), original,
                    adversary, target)
  steps = int(doc['steps'])
  wall = doc.get('wall_s_total') or doc.get('wall_s_this_session')
  best = doc.get('best') or {}
  record = zoo.RunRecord(
      experiment=name, config_name=config.name, config=_json(config.to_dict()), kind=kind,
      commits=tuple(loop.read_provenance(run_dir)['commits'] or ['unknown']),
      training=zoo.Training(steps=steps, wall_s=wall, s_per_step=wall / steps if wall else None,
                            best_step=best.get('step') if best.get('used') else None,
                            machine=_machine(), final_loss=_final_loss(doc),
                            stopped_early=bool(doc.get('stopped_early')),
                            met_stop_rule=bool(doc.get('met_stop_rule'))),
      protocol=dev.protocol, ours=dev.ours, published=dev.published, control=dev.control,
      verdict=dev.verdict, overrides=tuple(overrides), test=test)

  notes = results_dir / name / report.NOTES_FILE
  history = notes.read_bytes() if notes.is_file() else None

  def write(tmp):
    tmp = pathlib.Path(tmp)
    if history is not None:  # the entry's history outlives its retraining
      (tmp / report.NOTES_FILE).write_bytes(history)
    weights_file.save(adversary, tmp / zoo.WEIGHTS_FILE, config=config.name, step=steps)
    for key, image in strips.items():
      render.save_png(image, tmp / zoo.STRIPS[key])
    zoo.write_record(tmp, record)

  fileio.write_dir(results_dir / name, write)
  log(f'{name}: evaluated on {seeds} development and {test_seeds} test organisms in '
      f'{time.time() - t:.0f}s -> {results_dir / name} (on the test set it '
      f'{"passes" if test.verdict.passed else "does NOT pass"} the bar: '
      f'{_checks(test.verdict)})')
  return record


def evaluate_test_set(names, results_dir=None, test_seeds=TEST_SEEDS, log=print):
  """Evaluates committed entries on the held-out test set (evaluation only, no training).

  Each entry's adversary, under the config it records, with its published adversary and the
  control on the same `test_seeds` organisms; its `run.json` gains the `test` assessment, and
  its development verdict is judged again by today's bar from its stored figures. Written
  atomically, one entry at a time (an interrupted pass keeps the entries already done).

  Args:
    names: entries under `results_dir` ('lizard_red', 'perturbation/<regime>/spray_5pct').

  Returns:
    {name: `zoo.RunRecord`}.
  """
  results_dir = pathlib.Path(results_dir) if results_dir is not None else zoo.results_dir()
  out = {}
  for name in names:
    t = time.time()
    record = zoo.read_record(results_dir / name)
    config = configs.get_config(record.config_name, record.overrides)
    if config_diff(record.config, config):
      raise ReproduceError(f'{name} was trained with another config than today\'s '
                           f'{record.config_name} ({", ".join(config_diff(record.config, config))}'
                           '); retrain it: python -m tools.reproduce --experiments=' + name)
    adversary = zoo.load(results_dir / name)
    original, target, protocol = _assets(config)
    protocol = dataclasses.replace(protocol, seeds=record.protocol.seeds)
    test, _ = _assess(config, record.kind, evaluate.held_out_protocol(protocol, test_seeds),
                      original, adversary, target)
    dev = zoo.verdict(record.kind, record.ours, record.published, record.protocol.ages[-1],
                      record.protocol.seeds, control=record.control)
    record = dataclasses.replace(record, verdict=dev, test=test)
    zoo.write_record(results_dir / name, record)
    out[name] = record
    log(f'{name}: {test_seeds} test organisms in {time.time() - t:.0f}s: '
        f'{"passes" if test.verdict.passed else "does NOT pass"} ({_checks(test.verdict)})')
  return out


# ----------------------------------------------------------------------------------------------
# The campaign.

def _finished(run_dir, config):
  """Whether `run_dir` holds a finished run of `config` (its metrics.json at config.steps)."""
  try:
    doc = json.loads((run_dir / 'metrics.json').read_text(encoding='utf-8'))
    old = json.loads((run_dir / 'config.json').read_text(encoding='utf-8'))
  except (OSError, ValueError):
    return False
  done = doc.get('steps', -1) >= config.steps or doc.get('stopped_early')
  return bool(done) and not config_diff(old, config)


def _move_aside(path, log):
  stamp = time.strftime('%Y%m%d-%H%M%S')
  dest = path.with_name(f'{path.name}.old-{stamp}')
  os.replace(path, dest)
  log(f'moved the previous run {path} aside to {dest} (nothing is deleted)')


def run(experiments=PAPER, workdir='runs/reproduce', results_dir=None, retrain=False,
        report_only=False, seeds=EVAL_SEEDS, overrides=(), log=print, parallel=1,
        write_report=True, test_seeds=TEST_SEEDS):
  """Trains, collects and reports `experiments`.

  Args:
    experiments: config names (`EXPERIMENTS` or their `_testing` variants, 'perturbation',
      or one sweep cell's entry).
    workdir: runs live in `<workdir>/<name>` and resume from there.
    results_dir: the zoo (default `zoo.results_dir()`).
    retrain: train again even where the zoo already holds the same config (the previous run
      directory is moved aside, never deleted).
    report_only: only rebuild the report from the zoo's files (no training, no evaluation).
    seeds: organisms of each development evaluation.
    test_seeds: organisms of each held-out test set evaluation.
    overrides: `key=value` config overrides for every experiment.
    parallel: train and collect up to this many runs at once, each in its own process
      (`python -m tf_multinca.apps.reproduce` on one entry, logging to
      `<workdir>/<name>/reproduce.log`); 1 runs them here, one after the other.
    write_report: rebuild the report at the end (the processes of a fan-out leave it to the
      parent, so that one report and one table are written).

  Returns:
    {'records': {name: RunRecord}, 'skipped': [names], 'report': path or None}.

  Raises:
    ReproduceError, configs.ConfigError: bad names or overrides (before anything is trained).
    fanout.FanoutError: a process of a fan-out failed (the others ran to their end).
  """
  results_dir = pathlib.Path(results_dir) if results_dir is not None else zoo.results_dir()
  workdir = pathlib.Path(workdir)
  if workdir.exists() and not workdir.is_dir():
    raise ReproduceError(f'--workdir {workdir} is a file; pass a directory')
  if results_dir.exists() and not results_dir.is_dir():
    raise ReproduceError(f'--results_dir {results_dir} is a file; pass a directory')
  if seeds < 1:
    raise ReproduceError(f'seeds={seeds}; need at least 1')
  if parallel < 1:
    raise ReproduceError(f'parallel={parallel}; need at least 1 process')
  records, skipped = {}, []
  if not report_only:
    todo = []
    for cell in cells(experiments, overrides):
      if _plan(cell, workdir, results_dir, retrain, log):
        todo.append(cell)
      else:
        skipped.append(cell.entry)
    if parallel > 1 and len(todo) > 1:
      _fan_out(todo, workdir, results_dir, seeds, overrides, parallel, retrain, log,
               test_seeds)
      records = {cell.entry: zoo.read_record(results_dir / cell.entry) for cell in todo}
    else:
      for cell in todo:
        records[cell.entry] = _train_and_collect(cell, workdir, results_dir, seeds, log,
                                                 test_seeds)
  path = report.write_report(results_dir) if write_report else None
  if path is not None:
    log(f'report: {path}')
  return {'records': records, 'skipped': skipped, 'report': str(path) if path else None}


def _plan(cell, workdir, results_dir, retrain, log):
  """Whether `cell` needs training (and collecting): False where the zoo holds its config.
  With `retrain`, its previous run directory is moved aside here."""
  name, config = cell.entry, cell.config
  entry = results_dir / name
  if not retrain and (entry / zoo.RUN_FILE).is_file():
    held = zoo.read_record(entry)
    diff = config_diff(held.config, config)
    if not diff:
      # Training is seeded: the same config trains the same adversary again.
      verdict = ('it passes the bar' if held.verdict.passed else
                 'it does NOT pass the bar: change the config to train a better one')
      log(f'{name}: {entry} holds this config already ({verdict}); skipped (--retrain to '
          'train it again)')
      return False
    log(f'{name}: {entry} was trained with another config (fields: {", ".join(diff)}); '
        'training again')
  run_dir = workdir / name
  if retrain and (run_dir / 'config.json').exists():
    _move_aside(run_dir, log)
  elif run_dir.exists() and (run_dir / 'config.json').exists():
    old = json.loads((run_dir / 'config.json').read_text(encoding='utf-8'))
    diff = config_diff(old, config)
    if diff and not set(diff) <= set(configs.base.RESUMABLE_CHANGES):
      raise ReproduceError(
          f'{run_dir} holds a run of {name} with another config (fields: {", ".join(diff)}); '
          'pass --retrain to move it aside and train the current config')
  return True


def _train_and_collect(cell, workdir, results_dir, seeds, log, test_seeds=TEST_SEEDS):
  run_dir = workdir / cell.entry
  if _finished(run_dir, cell.config):
    log(f'{cell.entry}: {run_dir} is trained; collecting')
  else:
    log(f'--- {cell.entry}: training in {run_dir}')
    loop.train(cell.config, run_dir, log=log)
  return collect(cell.entry, cell.config, run_dir, results_dir, seeds, log, cell.kind,
                 cell.overrides, test_seeds)


LOG_FILE = 'reproduce.log'  # a fanned-out run's output, in its run directory


def _fan_out(todo, workdir, results_dir, seeds, overrides, parallel, retrain, log,
             test_seeds=TEST_SEEDS):
  """Trains and collects `todo` in up to `parallel` processes (one entry each)."""
  jobs = []
  for cell in todo:
    argv = [sys.executable, '-m', 'tf_multinca.apps.reproduce', f'--experiments={cell.entry}',
            f'--workdir={workdir.resolve()}', f'--results_dir={results_dir.resolve()}',
            f'--eval_seeds={seeds}', f'--test_seeds={test_seeds}', '--noreport']
    argv += [f'--set={o}' for o in overrides]
    if retrain:  # the parent moved the previous run aside; the entry must not be skipped
      argv.append('--retrain')
    jobs.append(fanout.Job(cell.entry, tuple(argv), workdir / cell.entry / LOG_FILE))
  log(f'{len(jobs)} runs in up to {parallel} processes '
      f'({fanout.threads_per_job(min(parallel, len(jobs)))} TF threads each)')
  fanout.run_jobs(jobs, parallel, log)
