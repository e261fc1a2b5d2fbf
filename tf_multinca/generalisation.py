"""How adversaries generalise across injections, and the minimal intervention for each.

The paper: "models that are able to take over starting from a small square generalize well to
spray patterns, while the opposite isn't true", and its aim, "find the minimal intervention that
achieves a given outcome". Evaluation only, on the held-out test set's organisms:

    from tf_multinca import generalisation
    rows = generalisation.matrix(['lizard_red', 'results/lizard_red'], ['square:2', 'spray:0.1'])
    generalisation.minimal_intervention(generalisation.Evaluator(), 'lizard_red')

Every cell is `takeover.run_takeover` of one adversary under one injection: organisms grown
`inject_at` steps with the original, injected, measured `age` steps later against the
pairing's target. `write_outputs` writes the table (CSV and Markdown), a heatmap and the
provenance into a directory (`results/generalisation/`).
"""

import csv
import dataclasses
import io
import json
import math
import pathlib

import numpy as np

from tf_multinca import errors
from tf_multinca import fileio
from tf_multinca import figures
from tf_multinca import hub
from tf_multinca import injection as inj
from tf_multinca import takeover
from tf_multinca import zoo

# The injections of the matrix: a single cell, squares, sprays from 1 to 50 %, a checkerboard.
INJECTIONS = ('square:1', 'square:2', 'square:3', 'square:4', 'spray:0.01', 'spray:0.03',
              'spray:0.05', 'spray:0.1', 'spray:0.25', 'spray:0.5', 'checkerboard')
SQUARE_LADDER = (1, 2, 3, 4, 6, 8)  # square sides tried for the minimal intervention
SPRAY_LADDER = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)  # a 1-2-5 grid down to 0.5 %
ENOUGH = 0.9  # a minimal intervention takes over completely in this share of the organisms
GONE = 0.01  # the original is gone when its fraction of mature cells falls below this
COLUMNS = ('adversary', 'injection', 'mode', 'organisms', 'seed', 'complete', 'complete_rate',
           'mse_mean', 'mse_median', 'alive_mean', 'takeover_step')
TABLE = 'table.csv'
MARKDOWN = 'table.md'
HEATMAP = 'heatmap'
MINIMAL = 'minimal.csv'
PROVENANCE = 'provenance.json'  # not run.json: the zoo reads every run.json as an entry


class GeneralisationError(errors.Error, ValueError):
  """A matrix that cannot be run as asked."""


@dataclasses.dataclass(frozen=True)
class Cell:
  """One adversary under one injection, on `organisms` organisms.

  Attributes:
    adversary: its name as `hub.load_pairing` takes it.
    injection: the injection spec as written ('square:2', 'spray:0.1').
    mode: 'multi' (the takeover) or 'fixed' (the fixed-mask baseline).
    organisms, seed: how many organisms, from which generator seed.
    complete: organisms with no original cell left at the last age.
    mse_mean, mse_median: MSE to the pairing's target at the last age (NaN without a target).
    alive_mean: mature cells at the last age.
    takeover_step: the median over organisms of the first step after injection at which the
      original's fraction falls below `GONE`; None where most organisms never get there.
  """
  adversary: str
  injection: str
  mode: str
  organisms: int
  seed: int
  complete: int
  mse_mean: float
  mse_median: float
  alive_mean: float
  takeover_step: int | None

  @property
  def complete_rate(self):
    return self.complete / self.organisms

  def row(self):
    """The table's row (`COLUMNS`)."""
    out = dataclasses.asdict(self)
    out['complete_rate'] = self.complete_rate
    return {k: out[k] for k in COLUMNS}


def takeover_step(fractions, gone=GONE):
  """The median first row at which each column of `fractions` `[T, B]` falls below `gone`,
  or None where most columns never do."""
  below = np.asarray(fractions) < gone
  first = np.where(below.any(0), below.argmax(0), np.iinfo(np.int64).max)
  median = np.sort(first)[(first.size - 1) // 2]  # the lower median: an observed step
  return None if median == np.iinfo(np.int64).max else int(median)


class Evaluator:
  """Cells on one set of organisms (default: the held-out test set), each computed once.

  Args:
    organisms, seed: how many organisms, from which generator seed.
    inject_at: growth steps before injection; age: steps after it to the measurement.
    evaluate: a function (adversary, injection, mode) -> `Cell`, instead of the rollouts (the
      tests give a synthetic one).
  """

  def __init__(self, organisms=zoo.TEST_SEEDS, seed=zoo.TEST_SEED, inject_at=60, age=500,
               evaluate=None):
    self.organisms, self.seed, self.inject_at, self.age = organisms, seed, inject_at, age
    self._evaluate = evaluate or self._rollout
    self._pairings = {}
    self._cells = {}

  def pairing(self, name):
    if name not in self._pairings:
      self._pairings[name] = hub.load_pairing(name)
    return self._pairings[name]

  def cells(self):
    """Every `Cell` computed (or seeded) so far, in order."""
    return list(self._cells.values())

  def seed_cells(self, cells):
    """Takes `cells` (a committed table's) as computed."""
    for c in cells:
      self._cells[(c.adversary, c.injection, c.mode)] = c

  def cell(self, adversary, injection, mode='multi'):
    """The `Cell` of `adversary` under `injection` (computed once per triple)."""
    key = (adversary, canonical(injection), mode)
    if key not in self._cells:
      self._cells[key] = self._evaluate(adversary, key[1], mode)
    return self._cells[key]

  def _rollout(self, adversary, injection, mode):
    pair = self.pairing(adversary)
    grid = pair.target_array.shape[0] if pair.target_array is not None else None
    result = takeover.run_takeover(
        pair.original, pair.adversary, injection, pair.target_array,
        steps_before=self.inject_at, steps_after=self.age, seeds=self.organisms, seed=self.seed,
        mode=mode, record_steps=[], size=grid, lenient=True)
    last = result.metrics['original_fraction'][-1]
    mse = result.metrics['mse'][-1] if pair.target_array is not None else np.array([math.nan])
    return Cell(adversary=adversary, injection=injection, mode=mode, organisms=self.organisms,
                seed=self.seed, complete=int((last == 0).sum()),
                mse_mean=float(np.mean(mse)), mse_median=float(np.median(mse)),
                alive_mean=float(result.metrics['alive'][-1].mean()),
                takeover_step=takeover_step(
                    result.metrics['original_fraction'][self.inject_at + 1:]))


def canonical(spec):
  """'square:2' / 'spray:0.1' / 'checkerboard' of a spec ('spray:10%' reads 'spray:0.1')."""
  try:
    parsed = inj.parse_injection(spec)
  except inj.InjectionError as e:
    raise GeneralisationError(str(e)) from None
  if parsed['kind'] == 'square':
    return f"square:{parsed['side']}"
  if parsed['kind'] == 'spray':
    return f"spray:{parsed['rate']:g}"
  return 'checkerboard' if parsed['period'] == 1 else f"checkerboard:{parsed['period']}"


def matrix(adversaries, injections=INJECTIONS, evaluator=None, modes=('multi',), log=print):
  """Every adversary under every injection (and mode): a list of `Cell`s, row by row."""
  evaluator = evaluator or Evaluator()
  out = []
  for name in adversaries:
    for spec in injections:
      for mode in modes:
        cell = evaluator.cell(name, spec, mode)
        log(f'{name} {mode} {cell.injection}: complete {cell.complete}/{cell.organisms}, MSE '
            f'{cell.mse_mean:.4f} (median {cell.mse_median:.4f})')
        out.append(cell)
  return out


def minimal_intervention(evaluator, adversary, mode='multi', enough=ENOUGH, mse_limit=None):
  """The smallest square side and spray rate that does the job, each ladder tried from its
  smallest step up (the first that is enough ends it).

  The job: complete takeovers in `enough` of the organisms; or, with `mse_limit` (the fixed
  mask, whose cells never spread, so that the original always keeps the rest), a mean MSE to
  the target at most `mse_limit`. The fixed mask's spray ladder ends at 100 %.

  Returns:
    {'square': side or None, 'spray': rate or None} (None: no step of the ladder is enough).
  """
  found = {'square': None, 'spray': None}
  sprays = SPRAY_LADDER + ((1.0,) if mse_limit is not None else ())
  for kind, ladder in (('square', SQUARE_LADDER), ('spray', sprays)):
    for value in ladder:
      cell = evaluator.cell(adversary, f'{kind}:{value:g}', mode)
      if (cell.mse_mean <= mse_limit if mse_limit is not None else
          cell.complete_rate >= enough):
        found[kind] = value
        break
  return found


def _table_text(rows, columns):
  buf = io.StringIO()
  w = csv.DictWriter(buf, columns, lineterminator='\n')
  w.writeheader()
  w.writerows(rows)
  return buf.getvalue()


def plot_heatmap(cells):
  """Adversary x injection, coloured by the complete-takeover rate, annotated with the mean
  MSE (multi mode; a fixed-mask cell is marked 'fixed')."""
  names = list(dict.fromkeys(f'{c.adversary}' + (' (fixed)' if c.mode == 'fixed' else '')
                             for c in cells))
  specs = list(dict.fromkeys(c.injection for c in cells))
  rate = np.full((len(names), len(specs)), np.nan)
  notes = {}
  for c in cells:
    i = names.index(c.adversary + (' (fixed)' if c.mode == 'fixed' else ''))
    j = specs.index(c.injection)
    rate[i, j] = c.complete_rate
    notes[i, j] = f'{c.mse_mean:.3f}' if c.mse_mean == c.mse_mean else '-'
  fig, ax = figures.plt.subplots(figsize=(1.0 * len(specs) + 4, 0.45 * len(names) + 2))
  im = ax.imshow(rate, vmin=0, vmax=1, cmap='viridis', aspect='auto')
  for (i, j), text in notes.items():
    ax.text(j, i, text, ha='center', va='center', fontsize=7,
            color='white' if rate[i, j] < 0.6 else 'black')
  ax.set_xticks(range(len(specs)), specs, rotation=45, ha='right')
  ax.set_yticks(range(len(names)), names, fontsize=8)
  ax.set_xlabel('injection')
  ax.set_ylabel('adversary')
  fig.colorbar(im, ax=ax, label='complete takeovers (share of organisms)')
  organisms = sorted({c.organisms for c in cells})
  ax.set_title('Generalisation across injections: colour complete takeovers, text mean MSE '
               f'({", ".join(map(str, organisms))} organisms)', fontsize=9)
  fig.tight_layout()
  return fig


def write_outputs(directory, cells, minimal=None, provenance=None):
  """Writes the matrix into `directory`: `table.csv` (`COLUMNS`), `table.md`, `heatmap.png`
  and `.svg`, `minimal.csv` ({(adversary, mode): {'square', 'spray'}}) and `provenance.json`."""
  d = pathlib.Path(directory)
  rows = [c.row() for c in cells]
  fileio.write_text(d / TABLE, _table_text(rows, COLUMNS))
  lines = ['| adversary | injection | mode | complete | MSE mean (median) | alive | takeover '
           'step |', '|---|---|---|---|---|---|---|']
  for c in cells:
    lines.append(f'| {c.adversary} | {c.injection} | {c.mode} | {c.complete}/{c.organisms} | '
                 f'{c.mse_mean:.4f} ({c.mse_median:.4f}) | {c.alive_mean:.0f} | '
                 f'{"-" if c.takeover_step is None else c.takeover_step} |')
  fileio.write_text(d / MARKDOWN, '\n'.join(lines) + '\n')
  figures.save(plot_heatmap(cells), d, HEATMAP)
  if minimal is not None:
    found = [{'adversary': a, 'mode': m, 'square_side': v['square'] or '',
              'spray_rate': '' if v['spray'] is None else f"{v['spray']:g}"}
             for (a, m), v in minimal.items()]
    fileio.write_text(d / MINIMAL, _table_text(found, ('adversary', 'mode', 'square_side',
                                                      'spray_rate')))
  fileio.write_json(d / PROVENANCE, dict(provenance or {}, cells=len(cells),
                                         organisms=sorted({c.organisms for c in cells}),
                                         seeds=sorted({c.seed for c in cells})))
  return d


def read_table(directory):
  """The committed table's rows as `Cell`s (the report reads these; nothing is run)."""
  cells = []
  with (pathlib.Path(directory) / TABLE).open(encoding='utf-8') as f:
    for r in csv.DictReader(f):
      cells.append(Cell(adversary=r['adversary'], injection=r['injection'], mode=r['mode'],
                        organisms=int(r['organisms']), seed=int(r['seed']),
                        complete=int(r['complete']), mse_mean=float(r['mse_mean']),
                        mse_median=float(r['mse_median']), alive_mean=float(r['alive_mean']),
                        takeover_step=int(r['takeover_step']) if r['takeover_step'] else None))
  return cells


def provenance_of(directory):
  return json.loads((pathlib.Path(directory) / PROVENANCE).read_text(encoding='utf-8'))


def default_adversaries(results_root=None):
  """The published pairings (`hub.PAIRINGS`' short names) and our fig. 12 / 14 entries."""
  ours = [f'{zoo.PREFIX}{n}' for n in zoo.names(results_root)
          if zoo.read_record(zoo.PREFIX + n, results_root).kind in ('static', 'dynamic')]
  return sorted(hub.PAIRINGS) + ours


def run(out_dir, adversaries=None, injections=INJECTIONS, fixed_mask=('lizard_red',),
        minimal=True, evaluator=None, provenance=None, log=print):
  """The matrix, the minimal interventions (multi for every adversary; fixed-mask for those in
  `fixed_mask`), written into `out_dir` (`write_outputs`). Returns (cells, minimal)."""
  evaluator = evaluator or Evaluator()
  adversaries = list(adversaries or default_adversaries())
  unknown = [a for a in fixed_mask if a not in adversaries]
  if unknown:
    raise GeneralisationError(f'fixed-mask baselines for {unknown}, which are not among the '
                              f'adversaries ({", ".join(adversaries)})')
  cells = matrix(adversaries, injections, evaluator, log=log)
  found = {}
  if minimal:
    for name in adversaries:
      found[name, 'multi'] = minimal_intervention(evaluator, name)
      log(f'{name}: minimal intervention {found[name, "multi"]}')
    for name in fixed_mask:
      # As good as the takeover from its own injection, within GENERALISES x its MSE.
      own = evaluator.cell(name, canonical(hub.pairing_injection(name)), 'multi')
      found[name, 'fixed'] = minimal_intervention(evaluator, name, mode='fixed',
                                                  mse_limit=GENERALISES * own.mse_mean)
      log(f'{name} (fixed mask): minimal intervention {found[name, "fixed"]}')
  doc = dict(provenance or {}, inject_at=evaluator.inject_at, age=evaluator.age,
             enough=ENOUGH, gone=GONE)
  # The table holds the minimal-intervention ladders' cells too: every figure behind a verdict.
  write_outputs(out_dir, evaluator.cells(), found if minimal else None, doc)
  return cells, found


def read_minimal(directory):
  """The committed minimal interventions: {(adversary, mode): {'square': side or None,
  'spray': rate or None}} ({} without the file)."""
  path = pathlib.Path(directory) / MINIMAL
  if not path.is_file():
    return {}
  with path.open(encoding='utf-8') as f:
    return {(r['adversary'], r['mode']): {
        'square': int(r['square_side']) if r['square_side'] else None,
        'spray': float(r['spray_rate']) if r['spray_rate'] else None} for r in csv.DictReader(f)}


GENERALISES = 1.5  # an adversary generalises where it stays within this x its own MSE...
SPRAYS = ('spray:0.05', 'spray:0.1', 'spray:0.25', 'spray:0.5')  # ...under these sprays,
SQUARES = ('square:2', 'square:3', 'square:4')  # or these squares, complete in `ENOUGH`


def claim(cells, trained_from):
  """The paper's claim in one direction, on the matrix: adversaries trained from `trained_from`
  ('square' or 'spray') injected the other way (`SPRAYS` or `SQUARES`), each against its own
  injection's MSE.

  Returns:
    (generalises: bool or None without cells, detail: str with the figures).
  """
  own = {}
  for c in cells:
    if c.mode != 'multi':
      continue
    spec = hub.pairing_injection(c.adversary)
    if spec is not None and inj.parse_injection(spec)['kind'] == trained_from and \
        canonical(spec) == c.injection:
      own[c.adversary] = c
  other = SPRAYS if trained_from == 'square' else SQUARES
  parts, ok = [], []
  for name, base in sorted(own.items()):
    for c in cells:
      if c.adversary == name and c.mode == 'multi' and c.injection in other:
        ratio = c.mse_mean / base.mse_mean if base.mse_mean > 0 else math.inf
        good = c.complete_rate >= ENOUGH and ratio <= GENERALISES
        ok.append(good)
        parts.append(f'{name} {c.injection}: {c.complete}/{c.organisms}, MSE {ratio:.1f}x')
  if not ok:
    return None, 'no cells'
  return (sum(ok) >= 0.75 * len(ok),
          f'{sum(ok)} of {len(ok)} cells within {GENERALISES:g}x their own MSE and complete in '
          f'{ENOUGH:.0%} ({"; ".join(parts)})')
