"""The generalisation matrix and the minimal-intervention search (tf_multinca.generalisation)."""

import csv

import numpy as np
import pytest

from tf_multinca import generalisation as gen


def synthetic(threshold_side, threshold_rate):
  """An evaluator whose answer is known: complete everywhere from a square side / spray rate
  on, nowhere below; it records what it was asked."""
  asked = []

  def evaluate(adversary, injection, mode):
    asked.append((adversary, injection, mode))
    kind, _, value = injection.partition(':')
    enough = (int(value) >= threshold_side if kind == 'square' else
              float(value) >= threshold_rate if kind == 'spray' else True)
    return gen.Cell(adversary, injection, mode, organisms=10, seed=1,
                    complete=10 if enough else 3, mse_mean=0.01, mse_median=0.01,
                    alive_mean=500.0, takeover_step=100 if enough else None)

  return gen.Evaluator(organisms=10, seed=1, evaluate=evaluate), asked


def test_the_minimal_intervention_is_the_first_step_of_each_ladder_that_is_enough():
  ev, asked = synthetic(threshold_side=3, threshold_rate=0.02)
  assert gen.minimal_intervention(ev, 'a') == {'square': 3, 'spray': 0.02}
  # Cheapest first, and no step past the answer.
  assert [i for _, i, _ in asked] == ['square:1', 'square:2', 'square:3', 'spray:0.005',
                                      'spray:0.01', 'spray:0.02']
  # Nothing in the ladder is enough: None, after trying every step once.
  ev, asked = synthetic(threshold_side=99, threshold_rate=0.9)
  assert gen.minimal_intervention(ev, 'b', mode='fixed') == {'square': None, 'spray': None}
  assert len(asked) == len(gen.SQUARE_LADDER) + len(gen.SPRAY_LADDER)
  assert {m for _, _, m in asked} == {'fixed'}
  # A cell asked twice is computed once ('spray:10%' is 'spray:0.1').
  ev, asked = synthetic(1, 0.01)
  ev.cell('a', 'spray:10%')
  ev.cell('a', 'spray:0.1')
  assert asked == [('a', 'spray:0.1', 'multi')]


def test_the_takeover_step_is_the_median_organisms_first_step_below_one_percent():
  fractions = np.array([[1.0, 1.0, 1.0], [0.5, 0.005, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.5]])
  assert gen.takeover_step(fractions) == 2  # first below: 2, 1, never -> lower median 2
  assert gen.takeover_step(np.ones((4, 3))) is None


def test_bad_injection_is_one_clear_error():
  ev, _ = synthetic(1, 0.01)
  with pytest.raises(gen.GeneralisationError, match="bad injection 'spray:2'; expected"):
    ev.cell('a', 'spray:2')


def test_outputs_round_trip_and_draw(tmp_path):
  ev, _ = synthetic(2, 0.05)
  cells = gen.matrix(['a', 'b'], ['square:1', 'spray:0.1'], ev, modes=('multi', 'fixed'),
                     log=lambda m: None)
  assert len(cells) == 8
  minimal = {('a', 'multi'): gen.minimal_intervention(ev, 'a')}
  gen.write_outputs(tmp_path, cells, minimal, provenance={'commit': 'abc'})
  rows = list(csv.DictReader((tmp_path / gen.TABLE).open()))
  assert list(rows[0]) == list(gen.COLUMNS)
  assert rows[0]['adversary'] == 'a' and rows[0]['injection'] == 'square:1'
  assert gen.read_table(tmp_path) == cells
  assert (tmp_path / 'minimal.csv').read_text().splitlines()[1] == 'a,multi,2,0.05'
  for ext in ('png', 'svg'):
    assert (tmp_path / f'{gen.HEATMAP}.{ext}').stat().st_size > 1000
  assert gen.provenance_of(tmp_path)['organisms'] == [10]


@pytest.mark.slow
def test_the_matrix_on_two_published_adversaries_and_two_injections(monkeypatch, mirror):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  ev = gen.Evaluator(organisms=2, seed=3, inject_at=30, age=40)
  cells = gen.matrix(['lizard_red', 'lizard_no_tail'], ['square:2', 'spray:0.5'], ev,
                     log=lambda m: None)
  assert [(c.adversary, c.injection) for c in cells] == [
      ('lizard_red', 'square:2'), ('lizard_red', 'spray:0.5'), ('lizard_no_tail', 'square:2'),
      ('lizard_no_tail', 'spray:0.5')]
  for c in cells:
    assert c.organisms == 2 and 0 <= c.complete <= 2 and c.mse_mean > 0 and c.alive_mean > 100
  # The injection is applied (half the cells at once changes the organism far more than a 2x2
  # square in 40 steps), and each pairing is measured against its own target.
  for square, spray in ((cells[0], cells[1]), (cells[2], cells[3])):
    assert abs(square.alive_mean - spray.alive_mean) > 100
  assert cells[0].mse_mean != cells[2].mse_mean
  assert ev.pairing('lizard_red').target == 'paper/images/lizard_red'
