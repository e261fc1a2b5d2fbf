"""The results zoo: our own trained adversaries, committed under `results/`, loadable by name.

One experiment's entry (written by `training.reproduce`)::

    results/<experiment>/run.json               what was trained, how long, how it did
    results/<experiment>/adversary.weights.h5   the adversary's rule (47 KB), and its
    results/<experiment>/adversary.weights.json convention (`weights_file`)
    results/<experiment>/strip.png              our takeover, one labelled frame per step;
    results/<experiment>/published_strip.png    the published adversary's on the same seeds;
    results/<experiment>/control_strip.png      the organism alone

`load('results/lizard_red')` is the adversary, `load_pairing('results/lizard_red')` the pairing
(`hub.load` and `hub.load_pairing` take these names too, so every tool does). Nested entries
(fig. 15's cells) are `results/perturbation/<regime>/spray_5pct`. The zoo's directory is
`$TF_MULTINCA_RESULTS`, else `results/` of the source checkout; a path to an entry's directory
works as a name as well.

`run.json` is a `RunRecord`: typed here, plain JSON on disk (no pickle, nothing runs).
"""

import dataclasses
import json
import math
import os
import pathlib

import numpy as np

from tf_multinca import errors
from tf_multinca import fileio
from tf_multinca import injection as inj
from tf_multinca import weights_file

RESULTS_ENV = 'TF_MULTINCA_RESULTS'
PREFIX = 'results/'
RUN_FILE = 'run.json'
WEIGHTS_FILE = 'adversary.weights.h5'
STRIPS = {'ours': 'strip.png', 'published': 'published_strip.png', 'control': 'control_strip.png'}
# The held-out test set: organisms from a generator seed of their own, read when an entry is
# written and never to choose anything (tuning compares recipes on the development seeds, the
# config's eval_seed; validations pick checkpoints on eval_seed + 1).
TEST_SEEDS = 128
TEST_SEED = 20220718
COMPLETE_SHARE = 0.97  # the share of organisms that must be taken over completely
MSE_FACTOR = 1.25  # our mean MSE, and our median MSE, at most this times the published's
CATASTROPHIC_FACTOR = 5.0  # an organism is lost when its MSE exceeds this x the published median
CATASTROPHIC_ALLOWANCE = 1 / 128  # lost organisms beyond the published's, per organism
ALIVE_TOLERANCE = 0.2  # dynamic: our alive cells within this share of the published's
KINDS = ('static', 'dynamic', 'perturbation', 'testing')


class ZooError(errors.Error, ValueError):
  """A results name that does not exist, or an entry whose files are not what they should be."""


def results_dir():
  """`$TF_MULTINCA_RESULTS`, else `<source checkout>/results`."""
  env = os.environ.get(RESULTS_ENV)
  if env:
    return pathlib.Path(env).expanduser()
  return pathlib.Path(__file__).resolve().parents[1] / 'results'


# ----------------------------------------------------------------------------------------------
# The record.

@dataclasses.dataclass(frozen=True)
class SeedMetrics:
  """One evaluation at one age: a value per seed.

  Attributes:
    original_fraction: `[seeds]` share of the mature cells that are the original's.
    alive: `[seeds]` mature cells.
    mse: `[seeds]` MSE of `[RGB, sum A]` to the target; empty without a target.
  """
  original_fraction: tuple
  alive: tuple
  mse: tuple = ()

  def complete(self):
    """Seeds taken over completely (not one original cell left)."""
    return int(sum(1 for f in self.original_fraction if f == 0.0))

  def stats(self, name):
    """(mean, std, worst) of metric `name` over seeds; worst = max (min for nothing)."""
    v = np.asarray(getattr(self, name), np.float64)
    if not v.size:
      return (math.nan, math.nan, math.nan)
    return (float(v.mean()), float(v.std()), float(v.max()))

  def median(self, name):
    """The median of metric `name` over seeds (NaN for nothing)."""
    v = np.asarray(getattr(self, name), np.float64)
    return float(np.median(v)) if v.size else math.nan


@dataclasses.dataclass(frozen=True)
class Evaluation:
  """A takeover (or control) evaluated under a `Protocol`.

  Attributes:
    model: which adversary ('ours', a published manifest name) or 'control'.
    ages: {steps after injection: `SeedMetrics`}.
    no_injection: seeds where the injection found no room (no adversary cell at all).
    weight_distance: RMS of `w_adv - w_orig` (None for a control).
    cosine_similarity: of the flattened weights (None for a control).
  """
  model: str
  ages: dict
  no_injection: int = 0
  weight_distance: float | None = None
  cosine_similarity: float | None = None

  def at(self, age):
    if age not in self.ages:
      raise ZooError(f'{self.model}: no evaluation at age {age} (ages {sorted(self.ages)})')
    return self.ages[age]

  @property
  def final_age(self):
    return max(self.ages)


@dataclasses.dataclass(frozen=True)
class Protocol:
  """How every evaluation of an entry was made: the same seeds for ours, the published
  adversary and the control.

  Attributes:
    seeds: samples (fresh organisms), batched.
    seed: seed of the evaluation's generator (never used in training or validation).
    inject_at: growth steps before injection.
    ages: steps after injection at which metrics were kept; the last is the verdict's.
    grid: grid side.
    strip_steps: steps (from the seed) of the strips' frames.
  """
  seeds: int
  seed: int
  inject_at: int
  ages: tuple
  grid: int
  strip_steps: tuple = ()


@dataclasses.dataclass(frozen=True)
class Training:
  """How the adversary was trained.

  Attributes:
    steps: train steps.
    wall_s: wall time of the training, every session of it, in seconds (final evaluation and
      export excluded); None where it was not recorded.
    s_per_step: `wall_s / steps`.
    best_step: the step of the validated weights kept (None: the last step's).
    machine: where it ran (cores, processor).
    final_loss: the validation score of the weights kept (the objective at the last age, the
      `stop_loss` criterion), else the mean training loss of the last log window (None
      where not recorded).
    stopped_early: whether the run stopped at its `stop_loss` criterion before its step cap.
    met_stop_rule: whether the weights kept meet that criterion: it stopped on it, or their
      validation meets it at the step cap (the training loop judges it: metrics.json).
  """
  steps: int
  wall_s: float | None
  s_per_step: float | None
  best_step: int | None
  machine: str
  final_loss: float | None = None
  stopped_early: bool = False
  met_stop_rule: bool = False


@dataclasses.dataclass(frozen=True)
class Verdict:
  """The reproduction bar, at the protocol's last age.

  Attributes:
    passed: every check below holds.
    checks: [(name, ours, limit, ok)] in the order of the issue's bar.
  """
  passed: bool
  checks: tuple


@dataclasses.dataclass(frozen=True)
class Assessment:
  """One entry evaluated on one set of organisms: ours, the published adversary and the control
  on the same organisms, and the bar's verdict on them.

  Attributes:
    protocol: `Protocol` (the held-out test set: `TEST_SEEDS` organisms of `TEST_SEED`).
    ours, published, control: `Evaluation`s (published / control None where there is none).
    verdict: `Verdict` at the protocol's last age.
  """
  protocol: Protocol
  ours: Evaluation
  published: Evaluation | None
  control: Evaluation | None
  verdict: Verdict


@dataclasses.dataclass(frozen=True)
class RunRecord:
  """`run.json`: one finished experiment.

  Attributes:
    experiment: the entry's path under results/ ('lizard_red', 'perturbation/.../spray_5pct').
    config_name: the named config.
    config: every field of the config it was trained with.
    kind: 'static' | 'dynamic' | 'perturbation' | 'testing' (which bar applies).
    commits: the git commit(s) of the code it was trained at (one per session).
    training: `Training`.
    protocol: `Protocol` of the development evaluation (the config's eval_seed: the seeds
      recipes were compared on while tuning).
    ours, published, control: `Evaluation`s there (published / control None where there is
      none).
    verdict: `Verdict` there.
    overrides: `key=value` overrides applied to the named config (fig. 15's cells set their
      spray rate so): the config is `configs.get_config(config_name, overrides)`.
    test: `Assessment` on the held-out test set (the report's headline figures), None for an
      entry not evaluated there yet.
  """
  experiment: str
  config_name: str
  config: dict
  kind: str
  commits: tuple
  training: Training
  protocol: Protocol
  ours: Evaluation
  published: Evaluation | None
  control: Evaluation | None
  verdict: Verdict
  overrides: tuple = ()
  test: Assessment | None = None

  @property
  def headline(self):
    """The assessment the report leads with: the test set's, else the development seeds'."""
    if self.test is not None:
      return self.test
    return Assessment(self.protocol, self.ours, self.published, self.control, self.verdict)

  @property
  def convention(self):
    return self.config['convention']

  def to_json(self):
    return _plain(dataclasses.asdict(self))

  @classmethod
  def from_json(cls, doc, source='run.json'):
    try:
      return _record(doc)
    except (KeyError, TypeError, ValueError) as e:
      raise ZooError(f'{source} is not a results run.json ({type(e).__name__}: '
                     f'{str(e)[:200]}); regenerate it with python -m tools.reproduce') from None


def _plain(obj):
  if isinstance(obj, dict):
    return {str(k): _plain(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [_plain(v) for v in obj]
  if isinstance(obj, (np.floating, np.integer)):
    return obj.item()
  return obj


def _evaluation(doc):
  if doc is None:
    return None
  ages = {int(a): SeedMetrics(**{k: tuple(float(x) for x in v) for k, v in m.items()})
          for a, m in doc['ages'].items()}
  return Evaluation(model=str(doc['model']), ages=ages, no_injection=int(doc['no_injection']),
                    weight_distance=doc.get('weight_distance'),
                    cosine_similarity=doc.get('cosine_similarity'))


def _protocol(p):
  return Protocol(seeds=int(p['seeds']), seed=int(p['seed']), inject_at=int(p['inject_at']),
                  ages=tuple(int(a) for a in p['ages']), grid=int(p['grid']),
                  strip_steps=tuple(p.get('strip_steps', ())))


def _verdict(doc):
  return Verdict(passed=bool(doc['passed']), checks=tuple(tuple(c) for c in doc['checks']))


def _assessment(doc):
  if doc is None:
    return None
  return Assessment(protocol=_protocol(doc['protocol']), ours=_evaluation(doc['ours']),
                    published=_evaluation(doc.get('published')),
                    control=_evaluation(doc.get('control')), verdict=_verdict(doc['verdict']))


def _record(doc):
  return RunRecord(
      experiment=str(doc['experiment']), config_name=str(doc['config_name']),
      config=dict(doc['config']), kind=str(doc['kind']), commits=tuple(doc['commits']),
      training=Training(**doc['training']),
      protocol=_protocol(doc['protocol']), ours=_evaluation(doc['ours']),
      published=_evaluation(doc.get('published')), control=_evaluation(doc.get('control')),
      verdict=_verdict(doc['verdict']), overrides=tuple(doc.get('overrides', ())),
      test=_assessment(doc.get('test')))


CONTROL_CHECK = 'control lost the shape (alive vs published)'
ALIVE_CHECK = 'alive cells vs published'
CATASTROPHIC_CHECK = 'catastrophic organisms'
COMPLETE_CHECK = 'complete takeovers'
MEAN_CHECK = 'mean MSE'
MEDIAN_CHECK = 'median MSE'


def catastrophic(ours, published):
  """Organisms of `ours` (a `SeedMetrics`) whose MSE exceeds `CATASTROPHIC_FACTOR` x the
  median MSE of `published` (the published adversary on the same organisms)."""
  limit = CATASTROPHIC_FACTOR * published.median('mse')
  return int(sum(1 for v in ours.mse if not v <= limit))  # a NaN (diverged) counts as lost


def verdict(kind, ours, published, age, seeds, control=None):
  """The bar for an experiment of `kind` at `age` after injection, ours against the published
  adversary on the same organisms.

  - complete takeovers in at least 97 % of the organisms, or in as many as the published
    adversary where it falls short of that;
  - with a published adversary (static and dynamic): mean and median MSE each at most 1.25x
    its; organisms lost (MSE over 5x its median) at most its count plus 1 in 128;
  - dynamic: alive cells within 20 % of its, and, given the `control` (the organism left
    alone), the control outside that band: it has decayed, vanished or exploded by then
    (fig. 14), so keeping the shape is the adversary's doing.
  Checks are (name, ours, limit, ok).
  """
  o = ours.at(age)
  need = math.ceil(COMPLETE_SHARE * seeds - 1e-9)
  if published is not None:
    need = min(need, published.at(age).complete())
  checks = [(COMPLETE_CHECK, o.complete(), need, o.complete() >= need)]
  if published is not None and kind not in ('testing', 'perturbation'):
    p = published.at(age)
    if o.mse and p.mse:
      mean, limit = o.stats('mse')[0], MSE_FACTOR * p.stats('mse')[0]
      checks.append((MEAN_CHECK, mean, limit, mean <= limit))
      median, mlimit = o.median('mse'), MSE_FACTOR * p.median('mse')
      checks.append((MEDIAN_CHECK, median, mlimit, median <= mlimit))
      lost = catastrophic(o, p)
      allowed = catastrophic(p, p) + math.ceil(CATASTROPHIC_ALLOWANCE * seeds - 1e-9)
      checks.append((CATASTROPHIC_CHECK, lost, allowed, lost <= allowed))
    if kind == 'dynamic':
      alive, ref = o.stats('alive')[0], p.stats('alive')[0]
      checks.append((ALIVE_CHECK, alive, ref, abs(alive - ref) <= ALIVE_TOLERANCE * ref))
      if control is not None:
        gone = control.at(age).stats('alive')[0]
        checks.append((CONTROL_CHECK, gone, ref, abs(gone - ref) > ALIVE_TOLERANCE * ref))
  return Verdict(passed=all(c[3] for c in checks), checks=tuple(checks))


# ----------------------------------------------------------------------------------------------
# Names and entries.

def is_result_name(name):
  """Whether `name` names a zoo entry: 'results/<experiment>' or a directory with run.json."""
  if not isinstance(name, (str, os.PathLike)):
    return False
  text = os.fspath(name)
  if text.startswith(PREFIX):
    return True
  path = pathlib.Path(text).expanduser()
  return path.is_dir() and (path / RUN_FILE).is_file() and (path / WEIGHTS_FILE).is_file()


def entry_dir(name, root=None):
  """The directory of entry `name` ('results/lizard_red', or an entry's directory path).

  Raises:
    ZooError: no such entry (listing the existing ones).
  """
  text = os.fspath(name)
  if text.startswith(PREFIX):
    rel = text[len(PREFIX):].strip('/')
    root = pathlib.Path(root) if root is not None else results_dir()
    if not rel or '..' in pathlib.PurePosixPath(rel).parts:
      raise ZooError(f'bad results name {text!r}: use results/<experiment>, e.g. '
                     'results/lizard_red')
    path = root / rel
  else:
    path = pathlib.Path(text).expanduser()
  if not (path / RUN_FILE).is_file():
    known = ', '.join(PREFIX + n for n in names(root)) or 'none yet'
    raise ZooError(f'{text!r}: no results entry at {path} (no {RUN_FILE}); entries: {known}. '
                   'Train one with python -m tools.reproduce --experiments=NAME')
  return path


def names(root=None):
  """The experiments in the zoo, as paths relative to it ('lizard_red', ...), sorted."""
  root = pathlib.Path(root) if root is not None else results_dir()
  if not root.is_dir():
    return []
  return sorted(str(p.parent.relative_to(root).as_posix()) for p in root.rglob(RUN_FILE))


def read_record(name, root=None):
  """The `RunRecord` of entry `name`.

  Raises:
    ZooError: no entry, or a run.json that is not one (too large, not JSON, missing fields).
  """
  path = entry_dir(name, root) / RUN_FILE
  if path.stat().st_size > 16 << 20:
    raise ZooError(f'{path} is larger than 16 MiB; not a results run.json')
  try:
    doc = json.loads(path.read_text(encoding='utf-8'))
  except (OSError, ValueError) as e:
    raise ZooError(f'{path} is not valid JSON ({e}); regenerate it with python -m '
                   'tools.reproduce') from None
  return RunRecord.from_json(doc, str(path))


def write_record(directory, record):
  """Writes `record` as `<directory>/run.json`, atomically."""
  return fileio.write_json(pathlib.Path(directory) / RUN_FILE, record.to_json())


def load(name, convention=None, root=None, **model_kwargs):
  """The adversary of entry `name` as a `CAModel` (in its recorded convention by default)."""
  d = entry_dir(name, root)
  record = read_record(d)
  return weights_file.load(d / WEIGHTS_FILE, convention or record.convention, **model_kwargs)


@dataclasses.dataclass(frozen=True)
class Entry:
  """What a zoo entry says about its pairing, before loading any model.

  Attributes:
    name: 'results/<experiment>' (or the directory given).
    directory: the entry's directory.
    record: its `RunRecord`.
    weights: the adversary's `.weights.h5`.
    original: the original organism's name (a manifest or registered name).
    injection: the parsed injection spec.
    target: the target spec ('paper/images/lizard_red', 'self:60', ...).
  """
  name: str
  directory: pathlib.Path
  record: RunRecord
  weights: pathlib.Path
  original: str
  injection: dict
  target: str


def get(name, root=None):
  """The `Entry` of `name`."""
  d = entry_dir(name, root)
  record = read_record(d)
  c = record.config
  return Entry(name=os.fspath(name), directory=d, record=record, weights=d / WEIGHTS_FILE,
               original=c['original'], injection=inj.parse_injection(c['injection']),
               target=c['target'])
