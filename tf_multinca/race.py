"""Races: several adversaries injected into one organism, each with its own injection.

The Multiple NCA takes any number of rules (SPEC section 3). A race puts the original (rule 0)
and k - 1 adversaries on one grid: the organism grows `steps_before` steps, each adversary is
injected in turn (into cells that are still the original's), and the rules compete:

    from tf_multinca import race
    result = race.run_named(['lizard_red', 'lizard_blue'], seeds=8)
    result.wins()          # {'lizard_red': 5, 'lizard_blue': 3}

Per step and organism, each rule's share of the mature cells (a cell counted for the rule with
the largest alpha there, `owned_cells`); at the end, the winner of each organism (the largest
share) and how long the adversaries coexisted (the last step at which two or more rules each
held at least `PRESENT` of the organism).
"""

import dataclasses
import json
import pathlib

import numpy as np
import tensorflow as tf

from tf_multinca import errors
from tf_multinca import fileio
from tf_multinca import hub
from tf_multinca import injection as inj
from tf_multinca import layout
from tf_multinca import metrics
from tf_multinca import multi
from tf_multinca import render

PRESENT = 0.01  # a rule is present in an organism while it holds this share of mature cells


class RaceError(errors.Error, ValueError):
  """A race that cannot be run as asked."""


@dataclasses.dataclass
class RaceResult:
  """A race's rollout.

  Attributes:
    names: the rules' names, the original first.
    steps: `[T + 1]` step of each row.
    shares: `[T + 1, B, k]` each rule's share of the mature cells (`owned_cells`).
    alive: `[T + 1, B]` mature cells.
    counts: `[T + 1, B, k]` mature cells of each rule (`owned_cells`).
    injection_step: the step after which the adversaries were injected.
    record_steps: steps of `states`.
    states: `[R, B, H, W, 15 + k]` recorded states.
    convention: the convention's name (rendering).
  """
  names: list
  steps: np.ndarray
  shares: np.ndarray
  alive: np.ndarray
  counts: np.ndarray
  injection_step: int
  record_steps: list
  states: np.ndarray
  convention: str

  def winners(self):
    """`[B]` index of the rule with the largest share at the last step (-1: nothing alive)."""
    last = self.shares[-1]
    return np.where(self.alive[-1] > 0, last.argmax(-1), -1)

  def wins(self):
    """{rule name: organisms it holds the largest share of at the last step} (and 'none')."""
    w = self.winners()
    out = {name: int((w == i).sum()) for i, name in enumerate(self.names)}
    out['none'] = int((w == -1).sum())
    return out

  def coexistence(self):
    """`[B]` steps after the injection during which two or more rules were present (the last
    such step minus the injection step; 0 if never)."""
    after = self.shares[self.injection_step + 1:]  # [T', B, k]
    together = (after >= PRESENT).sum(-1) >= 2  # [T', B]
    last = np.where(together.any(0), together.shape[0] - together[::-1].argmax(0), 0)
    return last.astype(np.int64)

  def summary(self):
    """Plain figures: wins, coexistence (median, max) and the mean shares at the last step."""
    co = self.coexistence()
    return {'rules': list(self.names), 'organisms': int(self.alive.shape[1]),
            'injection_step': self.injection_step, 'steps': int(self.steps[-1]),
            'wins': self.wins(), 'coexistence_median': float(np.median(co)),
            'coexistence_max': int(co.max()),
            'final_share_mean': {n: float(self.shares[-1, :, i].mean())
                                 for i, n in enumerate(self.names)}}


def owned_cells(x, k):
  """`[B, k]` mature cells of each rule, a cell counted once, for the rule with the largest
  alpha there (a cell can be mature in two rules at once; the counts add up to
  `metrics.alive_cells`)."""
  alphas = x[..., layout.multi_alpha(0):layout.multi_alpha(0) + k]
  alive = tf.reduce_max(alphas, -1) > metrics.MATURE
  owner = tf.one_hot(tf.argmax(alphas, -1), k) * tf.cast(alive, tf.float32)[..., None]
  return tf.reduce_sum(owner, axis=[1, 2])


def run_race(original, racers, steps_before=60, steps_after=500, seeds=8, seed=0,
             fire_rate=None, record_steps=(), size=None):
  """Grows `seeds` organisms with `original`, injects each racer, rolls the k rules out.

  Args:
    original: `CAModel` (rule 0).
    racers: [(name, `CAModel`, injection spec)], injected in this order after `steps_before`
      steps, each into cells that are still the original's.
    record_steps: steps whose states are kept.

  Returns:
    A `RaceResult`.
  """
  if len(racers) < 2:
    raise RaceError(f'a race needs at least two adversaries, got {len(racers)}')
  if steps_before < 1 or steps_after < 0 or seeds < 1:
    raise RaceError('steps_before must be >= 1, steps_after >= 0 and seeds >= 1')
  for name, model, _ in racers:
    hub.check_conventions(original.convention.name, model.convention.name,
                          f'load {name} in the original\'s convention')
  specs = [inj.parse_injection(spec) for _, _, spec in racers]
  k = len(racers) + 1
  rules = multi.MultiNCA([original] + [m for _, m, _ in racers])
  rng = tf.random.Generator.from_seed(seed)
  step = tf.function(lambda s: rules(s, fire_rate=fire_rate, rng=rng))
  count = tf.function(lambda s: owned_cells(s, k))
  alive_of = tf.function(metrics.alive_cells)
  x = rules.seed(seeds, size)
  counts, alive, kept = [], [], {}
  total = steps_before + steps_after
  record = set(record_steps)

  def observe(t, s):
    counts.append(count(s).numpy())
    alive.append(alive_of(s).numpy())
    if t in record:
      kept[t] = s.numpy()

  observe(0, x)
  padding = original.convention.padding
  for t in range(1, total + 1):
    x = step(x)
    if t == steps_before:
      for i, spec in enumerate(specs):
        x = inj.inject(x, inj.injection_mask(x, spec, padding, rng), source=0, dest=i + 1)
    observe(t, x)
  c, a = np.stack(counts), np.stack(alive)
  shares = np.divide(c, a[..., None], out=np.zeros_like(c), where=a[..., None] > 0)
  steps = sorted(kept)
  return RaceResult(names=['original'] + [n for n, _, _ in racers],
                    steps=np.arange(total + 1), shares=shares, alive=a, counts=c,
                    injection_step=steps_before, record_steps=steps,
                    states=np.stack([kept[t] for t in steps]) if steps else np.zeros([0]),
                    convention=original.convention.name)


def parse_racer(text):
  """'NAME' or 'NAME@INJECTION' -> (name, injection spec or None: the pairing's own)."""
  name, _, spec = str(text).partition('@')
  if not name:
    raise RaceError(f'bad racer {text!r}; expected NAME or NAME@INJECTION, e.g. '
                    'lizard_blue@square:2')
  if spec:
    inj.parse_injection(spec)  # one clear error now, not after the growth
  return name, spec or None


def run_named(racers, original=None, convention=None, **kwargs):
  """A race of named adversaries (`hub.load_pairing` names, each 'NAME' or 'NAME@INJECTION'):
  the original is `original` or the racers' recorded one (which must agree)."""
  loaded = []
  originals = set()
  for text in racers:
    name, spec = parse_racer(text)
    pair = hub.load_pairing(name, convention=convention)
    originals.add(pair.original_name)
    loaded.append((name, pair, spec or pair.injection))
  if original is None and len(originals) > 1:
    raise RaceError(f'the racers were trained on different originals ({sorted(originals)}); '
                    'pass --original to choose one')
  orig = hub.load(original, convention or loaded[0][1].convention.name) if original else \
      loaded[0][1].original
  return run_race(orig, [(n, p.adversary, s) for n, p, s in loaded], **kwargs)


def write_outputs(result, workdir, name='race'):
  """`<name>_metrics.json` (the summary, per-step mean shares) and `<name>_strip.png` (each
  rule's cells in its own colour under the organism) into `workdir`."""
  d = pathlib.Path(workdir)
  doc = dict(result.summary(), mean_shares={
      n: [float(v) for v in result.shares[:, :, i].mean(1)] for i, n in enumerate(result.names)})
  paths = {'metrics': fileio.write_text(d / f'{name}_metrics.json', json.dumps(doc, indent=1))}
  if len(result.record_steps):
    strip = render.evolution_strip(result.states[:, 0], result.convention, zoom_factor=3,
                                   steps=result.record_steps,
                                   marks={result.injection_step: 'injected'}, names=result.names)
    paths['strip'] = render.save_png(strip, d / f'{name}_strip.png')
  return paths
