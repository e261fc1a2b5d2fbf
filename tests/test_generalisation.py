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


def cell(adversary, injection, complete, mse, organisms=32):
  return gen.Cell(adversary, injection, 'multi', organisms, 1, complete, mse, mse, 600.0, 150)


def test_the_papers_claim_is_checked_in_each_direction():
  # lizard_red is trained from a square, lizard_red_spray from a 10 % spray (their pairings).
  cells = [cell('lizard_red', 'square:2', 32, 0.003)]
  cells += [cell('lizard_red', s, 32, 0.004) for s in gen.SPRAYS]  # 1.3x: generalises
  cells += [cell('lizard_red_spray', 'spray:0.1', 32, 0.005)]
  cells += [cell('lizard_red_spray', s, 20, 0.005) for s in gen.SQUARES]  # 20/32 < 90 %
  holds, detail = gen.claim(cells, 'square')
  assert holds is True and detail.startswith('4 of 4 cells within 1.5x')
  assert 'lizard_red spray:0.05: 32/32, MSE 1.3x' in detail
  holds, detail = gen.claim(cells, 'spray')
  assert holds is False and detail.startswith('0 of 3 cells')
  assert gen.claim(cells[:1], 'spray') == (None, 'no cells')


def test_the_report_shows_the_committed_matrix(tmp_path):
  from tf_multinca import report
  cells = [cell('lizard_red', 'square:2', 32, 0.003), cell('lizard_red', 'spray:0.1', 30, 0.012),
           cell('lizard_red_spray', 'spray:0.1', 32, 0.005),
           cell('lizard_red_spray', 'square:2', 32, 0.0051)]
  minimal = {('lizard_red', 'multi'): {'square': 1, 'spray': 0.02},
             ('lizard_red', 'fixed'): {'square': None, 'spray': 0.5}}
  gen.write_outputs(tmp_path / 'generalisation', cells, minimal, provenance={'commit': 'abc1'})
  text = report.write_report(tmp_path).read_text()
  assert '## Generalisation across injections' in text
  assert '| `lizard_red` | 32/32, 0.0030 | 30/32, 0.0120 |' in text
  assert '| `lizard_red` | fixed | - | 50 % |' in text
  assert ('square-trained adversaries under sprays of 5-50 %: **do not generalise**, where the '
          'paper says they generalise (0 of 1 cells') in text
  assert ('spray-trained adversaries under squares of side 2-4: **generalise**, where the paper '
          'says they do not generalise (1 of 1') in text
  assert '![generalisation](generalisation/heatmap.png)' in text


def test_a_fixed_masks_minimal_intervention_is_judged_on_the_mse():
  # Complete takeovers never happen with a fixed mask; the MSE falls with the share masked.
  def evaluate(adversary, injection, mode):
    kind, _, value = injection.partition(':')
    mse = 0.1 / float(value) if kind == 'spray' else 1.0
    return gen.Cell(adversary, injection, mode, 10, 1, 0, mse, mse, 500.0, None)
  ev = gen.Evaluator(organisms=10, seed=1, evaluate=evaluate)
  assert gen.minimal_intervention(ev, 'a', 'fixed', mse_limit=0.25) == {'square': None,
                                                                         'spray': 0.5}
  assert gen.minimal_intervention(ev, 'a', 'fixed', mse_limit=0.15)['spray'] == 1.0
  assert gen.minimal_intervention(ev, 'a', 'fixed', mse_limit=0.01)['spray'] is None
