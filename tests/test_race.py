"""Races: three rules on one organism (tf_multinca.race)."""

import numpy as np
import pytest

from tf_multinca import race


def test_racers_parse_with_or_without_their_own_injection():
  assert race.parse_racer('lizard_blue') == ('lizard_blue', None)
  assert race.parse_racer('results/lizard_red@spray:0.1') == ('results/lizard_red', 'spray:0.1')
  with pytest.raises(Exception, match='bad injection'):
    race.parse_racer('lizard_blue@spray:7')
  with pytest.raises(race.RaceError, match='NAME@INJECTION'):
    race.parse_racer('@square:2')


def fake(shares, alive, injection_step=1):
  shares = np.asarray(shares, np.float64)
  return race.RaceResult(names=['original', 'a', 'b'], steps=np.arange(shares.shape[0]),
                         shares=shares, alive=np.asarray(alive, np.float64), counts=shares,
                         injection_step=injection_step, record_steps=[], states=np.zeros([0]),
                         convention='paper')


def test_wins_and_coexistence_are_counted_per_organism():
  # 3 organisms over 5 steps: a wins at once; b and a share until step 3; nothing survives.
  shares = [[[1, 0, 0], [1, 0, 0], [1, 0, 0]],
            [[0.5, 0.5, 0], [0.3, 0.3, 0.4], [1, 0, 0]],
            [[0, 1, 0], [0, 0.5, 0.5], [0, 0, 0]],
            [[0, 1, 0], [0, 0.5, 0.5], [0, 0, 0]],
            [[0, 1, 0], [0, 0.1, 0.9], [0, 0, 0]]]
  alive = [[10, 10, 10]] * 4 + [[10, 10, 0]]
  r = fake(shares, alive)
  assert r.wins() == {'original': 0, 'a': 1, 'b': 1, 'none': 1}
  # After the injection (rows 2..4): organism 0 none; organism 1 rows 2-4 (3 steps); 2 none.
  assert r.coexistence().tolist() == [0, 3, 0]
  assert r.summary()['wins']['b'] == 1


@pytest.mark.slow
def test_a_three_rule_race_shares_the_living_cells(mirror, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  result = race.run_named(['lizard_red', 'lizard_blue'], steps_before=60, steps_after=60,
                          seeds=2, seed=1, record_steps=[60, 61, 120])
  assert result.names == ['original', 'lizard_red', 'lizard_blue']
  assert result.shares.shape == (121, 2, 3) and result.states.shape[-1] == 18
  after = result.counts[61:]
  assert (after[:, :, 1] > 0).any() and (after[:, :, 2] > 0).any()  # both adversaries injected
  # Every mature cell is one rule's: the rules' counts add up to the living cells.
  np.testing.assert_array_equal(result.counts.sum(-1), result.alive)
  np.testing.assert_allclose(result.shares[61:].sum(-1), 1.0, atol=1e-6)
  assert sum(result.wins().values()) == 2


def test_the_report_shows_the_races(tmp_path):
  from tf_multinca import report
  shares = [[[1, 0, 0], [1, 0, 0]], [[0.2, 0.5, 0.3], [0.1, 0.1, 0.8]],
            [[0, 0.7, 0.3], [0, 0, 1]]]
  r = fake(shares, [[10, 10]] * 3)
  r.names = ['original', 'lizard_red', 'lizard_blue']
  race.write_outputs(r, tmp_path / 'races', 'red_vs_blue')
  text = report.write_report(tmp_path).read_text()
  assert '## Races: three rules on one organism' in text
  # Coexistence after the injection (row 2 only): organism 0 one step, organism 1 none.
  assert ('| red_vs_blue | 2 | `lizard_red` 1, `lizard_blue` 1, original 0, none 0 | 0.5, 1 | '
          'original 0.00, lizard_red 0.35, lizard_blue 0.65 |') in text
