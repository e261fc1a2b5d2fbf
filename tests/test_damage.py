"""Damage masks and damage in a rollout (tf_multinca.damage, takeover.run_takeover)."""

import numpy as np
import pytest
import tensorflow as tf

from tf_multinca import damage
from tf_multinca import hub
from tf_multinca import takeover


def erased(keep):
  return sorted(map(tuple, np.argwhere(np.asarray(keep)[0, ..., 0] == 0).tolist()))


def test_a_disc_erases_exactly_the_cells_within_its_radius():
  keep = damage.disc_mask((1, 11, 11), [[5.0, 5.0]], 2)
  expected = sorted((r, c) for r in range(11) for c in range(11)
                    if (r - 5) ** 2 + (c - 5) ** 2 <= 4)
  assert erased(keep) == expected and len(expected) == 13
  assert keep.shape == (1, 11, 11, 1) and set(np.unique(keep)) == {0.0, 1.0}


def test_on_the_torus_a_disc_wraps_around_the_edges():
  zeros = erased(damage.disc_mask((1, 8, 8), [[0.0, 0.0]], 1, 'zeros'))
  circular = erased(damage.disc_mask((1, 8, 8), [[0.0, 0.0]], 1, 'circular'))
  assert zeros == [(0, 0), (0, 1), (1, 0)]
  assert circular == [(0, 0), (0, 1), (0, 7), (1, 0), (7, 0)]


def test_a_half_plane_erases_the_cells_beyond_the_centre_in_its_direction():
  right = np.asarray(damage.half_plane_mask((1, 6, 6), [[2.0, 2.0]], 0))[0, ..., 0]
  np.testing.assert_array_equal(right, np.tile([1, 1, 1, 0, 0, 0], (6, 1)))
  down = np.asarray(damage.half_plane_mask((1, 6, 6), [[2.0, 2.0]], 90))[0, ..., 0]
  np.testing.assert_array_equal(down, np.tile([[1], [1], [1], [0], [0], [0]], (1, 6)))


def test_the_disc_is_centred_on_a_living_cell_reproducibly_under_a_seed():
  alpha = np.zeros([4, 16, 16], np.float32)
  alpha[:, 3:6, 9:12] = 1.0  # the only living cells
  alpha[3] = 0.0  # a sample with none: the grid's centre
  draws = []
  for _ in range(2):
    rng = tf.random.Generator.from_seed(7)
    draws.append(damage.random_living_cells(tf.constant(alpha) > 0.1, rng).numpy())
  np.testing.assert_array_equal(draws[0], draws[1])
  for r, c in draws[0][:3]:
    assert 3 <= r < 6 and 9 <= c < 12
  np.testing.assert_array_equal(draws[0][3], [8, 8])
  keep = damage.damage_mask('10:disc:1', tf.constant(alpha), rng=tf.random.Generator.from_seed(7))
  r, c = draws[0][0]
  assert erased(keep[:1]) == sorted([(r, c), (r - 1, c), (r + 1, c), (r, c - 1), (r, c + 1)])
  x = tf.ones([4, 16, 16, 17])
  hurt = damage.damage(x, keep).numpy()
  assert hurt[0, int(r), int(c)].sum() == 0 and hurt[0, 0, 0].sum() == 17


@pytest.mark.parametrize('spec, expected', [
    ('300:disc:8', damage.Damage(300, 'disc', 8.0)),
    ('20:half:90', damage.Damage(20, 'half', 90.0)),
    (' 5:disc:2.5 ', damage.Damage(5, 'disc', 2.5)),
])
def test_damage_specs_parse_into_typed_values(spec, expected):
  assert damage.parse_damage(spec) == expected
  assert damage.parse_damage(str(expected)) == expected


@pytest.mark.parametrize('bad', ['disc:8', '300:disc:0', '300:circle:8', '300:disc', 'x:half:3'])
def test_a_bad_damage_spec_is_one_clear_error(bad):
  with pytest.raises(damage.DamageError, match=r'expected STEP:disc:R .* or STEP:half:ANGLE'):
    damage.parse_damage(bad)


def test_a_takeover_with_damage_loses_cells_at_the_damage_step(mirror, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  pair = hub.load_pairing('lizard_red')
  args = dict(steps_before=60, steps_after=20, seeds=2, seed=5, record_steps=[])
  plain = takeover.run_takeover(pair.original, pair.adversary, pair.injection,
                                pair.target_array, **args)
  hurt = takeover.run_takeover(pair.original, pair.adversary, pair.injection,
                               pair.target_array, damages=['70:disc:6'], **args)
  assert hurt.info['damage_steps'] == [70]
  before, after = plain.metrics['alive'], hurt.metrics['alive']
  np.testing.assert_array_equal(before[:70], after[:70])  # the same rollout up to the damage
  # A disc of radius 6 around a living cell: part of a thin lizard (its legs, its tail).
  assert (after[70] <= before[70] - 10).all() and (after[69] == before[69]).all()
  with pytest.raises(takeover.TakeoverError, match='outside the rollout: steps 1 to 80'):
    takeover.run_takeover(pair.original, pair.adversary, pair.injection, pair.target_array,
                          damages=['90:disc:6'], **args)


def test_an_adversarys_pool_damages_only_samples_past_damage_min_age():
  from tf_multinca import configs
  from tf_multinca.training import pool as pool_lib
  from tf_multinca.training import samples as samples_lib
  config = configs.get_config('lizard_regenerating', [
      'batch_size=8', 'pool_size=8', 'replace_worst=0', 'damage_n=8', 'damage_min_age=200'])
  pool = pool_lib.SamplePool(8, [24, 24, 17])
  ages = tf.constant([0, 50, 199, 200, 250, 300, 10, 400], tf.int32)
  pool.commit(tf.range(8), tf.ones([8, 24, 24, 17]), ages, tf.zeros([8]))
  rng = tf.random.Generator.from_seed(1)
  s = samples_lib.Samples(config, 24, rng, pool, grower=object())
  _, x, got_ages = s.batch()
  erased = tf.reduce_sum(tf.cast(x[..., 0] == 0, tf.int32), [1, 2]).numpy()
  for age, n in zip(got_ages.numpy(), erased):
    assert (n > 0) == (age >= 200), (age, n)  # a Distill disc on every old sample only
  assert (got_ages.numpy() >= 200).any() and (got_ages.numpy() < 200).any()


@pytest.mark.slow
def test_lizard_regenerating_trains_with_damage(tmp_path, mirror, monkeypatch):
  from tf_multinca import configs
  from tf_multinca.training import loop
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  config = configs.get_config('lizard_regenerating_testing')
  assert (config.damage_n, config.damage_min_age) == (1, 4)
  doc = loop.train(config, tmp_path / 'run', log=lambda m: None)
  assert doc['steps'] == config.steps and (tmp_path / 'run' / 'export').is_dir()
