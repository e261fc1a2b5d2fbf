"""The Multiple NCA step against tests/npref.py, injection and metrics."""

import numpy as np
import pytest
import tensorflow as tf

import npref
from test_model import random_weights
from tf_multinca import CAModel, injection, metrics, multi
from tf_multinca import pretrained, rollout

CONVENTIONS = ['distill', 'paper']


def random_multi_state(seed, k, shape=(2, 12, 13)):
  rng = np.random.default_rng(seed)
  x = rng.uniform(-0.2, 0.8, shape + (15 + k,)).astype(np.float32)
  a = rng.uniform(0, 1, shape + (k,))
  # Mostly one mature rule per cell, some empty and growing cells, some exact ties.
  owner = rng.integers(0, k, shape)
  alphas = np.where(np.arange(k) == owner[..., None], a, a * 0.08)
  alphas *= (rng.uniform(0, 1, shape) > 0.3)[..., None]
  alphas[:, 0, 0, :] = 0.5  # a tie: both rules mature and equal
  x[..., 15:] = alphas
  return x


def make_multi(convention, k, seed=0):
  rules = [CAModel(convention=convention).set_rule_weights(random_weights(seed + i))
           for i in range(k)]
  return multi.MultiNCA(rules), rules


@pytest.mark.parametrize('convention', CONVENTIONS)
@pytest.mark.parametrize('k', [2, 3])
def test_multi_step_matches_numpy(convention, k):
  m, rules = make_multi(convention, k)
  x = random_multi_state(k, k)
  step = tf.function(lambda s: m(s, fire_rate=1.0))
  got = step(tf.constant(x)).numpy()
  want = npref.multi_step(x, [r.get_rule_weights() for r in rules], m.convention.padding)
  assert np.abs(got - want).max() < 1e-5


def test_trainable_variables_tracked():
  m, _ = make_multi('paper', 3)
  assert len(m.trainable_variables) == 12
  assert m.count_params() == 3 * 8336


def test_k1_equals_single_step_without_post_mask():
  # With k = 1 and all cells firing, the multi step equals the single step without its
  # post-update mask, whenever no cell sits exactly at alpha = 0.1.
  w = random_weights(3)
  ca = CAModel(convention='paper').set_rule_weights(w)
  m = multi.MultiNCA([ca])
  x = npref_state = np.random.default_rng(0).uniform(-0.2, 0.9, (1, 10, 10, 16)).astype(np.float32)
  got = m(multi.to_multi(tf.constant(x), 1), fire_rate=1.0).numpy()
  pre = npref.maxpool3x3(npref_state[..., 3:4], 'circular') > 0.1
  y = npref_state * pre
  y = y + npref.rule(npref.perceive(y, 0.0, 'circular'), w) * pre
  want = multi.to_multi(tf.constant(y.astype(np.float32)), 1).numpy()
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_identical_rules_behave_as_one():
  # Paper: if all the rules are the same, the model behaves as one rule.
  w = random_weights(5)
  one = multi.MultiNCA([CAModel(convention='paper').set_rule_weights(w)])
  two = multi.MultiNCA([CAModel(convention='paper').set_rule_weights(w) for _ in range(2)])
  x1 = one.seed(1, 16)
  x2 = two.seed(1, 16)
  for _ in range(5):
    x1 = one(x1, fire_rate=1.0)
    x2 = two(x2, fire_rate=1.0)
  np.testing.assert_allclose(x2.numpy()[..., :16], x1.numpy(), atol=1e-5)
  assert not x2.numpy()[..., 16].any()


def test_each_rule_writes_only_its_alpha():
  m, rules = make_multi('paper', 2)
  x = np.zeros((1, 9, 9, 17), np.float32)
  x[0, 2:4, 2:4, 15] = 1.0  # rule 0 only, far from rule 1
  y = m(tf.constant(x), fire_rate=1.0).numpy()
  assert not y[..., 16].any()
  assert np.abs(y[..., 15]).max() > 0


def test_conventions_must_agree():
  with pytest.raises(ValueError, match='grid edge'):
    multi.MultiNCA([CAModel(convention='paper'), CAModel(convention='distill')])
  with pytest.raises(ValueError, match='at least one'):
    multi.MultiNCA([])


def test_seed_and_config_round_trip():
  m, _ = make_multi('paper', 2)
  s = m.seed(3).numpy()
  assert s.shape == (3, 48, 48, 17)
  assert s[:, 24, 24, 15].tolist() == [1, 1, 1] and s.sum() == 3
  clone = multi.MultiNCA.from_config(m.get_config())
  assert clone.k == 2 and clone.convention.name == 'paper'


# Injection.

def organism(h=20, w=20):
  x = np.zeros((4, h, w, 17), np.float32)
  x[:, 5:15, 6:14, 15] = 1.0
  return tf.constant(x)


@pytest.mark.parametrize('side', [1, 2, 3, 4])
def test_square_inside_organism(side):
  x = organism()
  g = tf.random.Generator.from_seed(side)
  m = injection.square_mask(x, side, 'zeros', g).numpy()
  mature = x.numpy()[..., 15:16] > 0.1
  assert (m.sum(axis=(1, 2, 3)) == side * side).all()
  assert (m <= mature).all()
  # Seeded: the same generator seed gives the same squares; different samples differ.
  m2 = injection.square_mask(x, side, 'zeros', tf.random.Generator.from_seed(side)).numpy()
  np.testing.assert_array_equal(m, m2)


def test_square_positions_cover_eroded_region():
  x = organism()
  g = tf.random.Generator.from_seed(0)
  seen = set()
  for _ in range(40):
    m = injection.square_mask(x, 3, 'zeros', g).numpy()
    for b in range(4):
      ys, xs = np.nonzero(m[b, ..., 0])
      seen.add((ys.min() + 1, xs.min() + 1))
  # Centres of a 3-square in a 10x8 block: rows 6..13, cols 7..12 -> 8 * 6 = 48 positions.
  assert seen <= {(r, c) for r in range(6, 14) for c in range(7, 13)}
  assert len(seen) > 35


def test_square_too_big_for_organism():
  x = organism()
  assert not injection.square_centres_available(x, 12).numpy().any()
  assert injection.square_centres_available(x, 7).numpy().all()
  assert injection.square_mask(x, 12).numpy().sum() == 0


def test_spray_rate_and_inject():
  x = organism(64, 64)
  m = injection.spray_mask(x, 0.1, tf.random.Generator.from_seed(1))
  assert abs(float(tf.reduce_mean(m)) - 0.1) < 0.01
  y = injection.inject(x, m).numpy()
  np.testing.assert_allclose(y[..., 15] + y[..., 16], x.numpy()[..., 15])
  np.testing.assert_array_equal(y[..., 16], x.numpy()[..., 15] * m.numpy()[..., 0])
  np.testing.assert_array_equal(y[..., :15], x.numpy()[..., :15])


def test_checkerboard():
  m = injection.checkerboard_mask(tf.zeros((1, 4, 4, 17))).numpy()[0, ..., 0]
  np.testing.assert_array_equal(m, [[0, 1, 0, 1], [1, 0, 1, 0], [0, 1, 0, 1], [1, 0, 1, 0]])


@pytest.mark.parametrize('text,want', [
    ('square:2', {'kind': 'square', 'side': 2}),
    ('spray:0.03', {'kind': 'spray', 'rate': 0.03}),
    ('spray:10%', {'kind': 'spray', 'rate': 0.1}),
    ('checkerboard', {'kind': 'checkerboard', 'period': 1}),
])
def test_parse_injection(text, want):
  assert injection.parse_injection(text) == want


@pytest.mark.parametrize('bad', ['square:0', 'spray:1.5', 'circle:3', 'spray:x'])
def test_parse_injection_errors(bad):
  with pytest.raises(injection.InjectionError, match='expected square'):
    injection.parse_injection(bad)


# Metrics and the fixed-mask baseline.

def test_metrics():
  x = np.zeros((1, 4, 4, 17), np.float32)
  x[0, 0, :, 15] = 1.0
  x[0, 1, :2, 16] = 0.5
  x[0, 2, 0, 16] = 0.05  # not mature
  got = metrics.takeover_metrics(tf.constant(x), np.zeros((4, 4, 4), np.float32))
  assert float(got['alive'][0]) == 6
  np.testing.assert_allclose(got['original_fraction'].numpy(), [4 / 6])
  want = (4 * 1.0 + 2 * 0.25 + 0.05 ** 2) / 64
  np.testing.assert_allclose(got['mse'].numpy(), [want], rtol=1e-6)
  np.testing.assert_allclose(metrics.old_cells(tf.constant(x)).numpy(), [4.0])


def test_weight_distance_and_cosine():
  a = CAModel().set_rule_weights(random_weights(1))
  b = CAModel().set_rule_weights(random_weights(1))
  assert float(metrics.weight_distance(a, b)) == 0.0
  np.testing.assert_allclose(float(metrics.cosine_similarity(a, b)), 1.0, rtol=1e-6)
  c = CAModel().set_rule_weights({k: -v for k, v in random_weights(1).items()})
  np.testing.assert_allclose(float(metrics.cosine_similarity(a, c)), -1.0, rtol=1e-6)
  va = np.concatenate([v.ravel() for v in random_weights(1).values()])
  np.testing.assert_allclose(float(metrics.weight_distance(a, c)),
                             np.sqrt(np.mean((2 * va) ** 2)), rtol=1e-5)


def test_fixed_mask_model():
  w0, w1 = random_weights(1), random_weights(2)
  a = CAModel(convention='paper').set_rule_weights(w0)
  b = CAModel(convention='paper').set_rule_weights(w1)
  fixed = multi.FixedMaskNCA(a, b)
  x = np.random.default_rng(0).uniform(0, 1, (1, 8, 8, 16)).astype(np.float32)
  mask = np.zeros((1, 8, 8, 1), np.float32)
  mask[:, :4] = 1
  got = fixed(tf.constant(x), mask, fire_rate=1.0).numpy()
  s0 = npref.single_step(x, w0, 'circular')
  s1 = npref.single_step(x, w1, 'circular')
  np.testing.assert_allclose(got, s0 * (1 - mask) + s1 * mask, atol=1e-5)
  # It serialises like the other models: the config rebuilds both rules' architecture and
  # convention (weights travel separately, as for every Keras model).
  clone = multi.FixedMaskNCA.from_config(fixed.get_config())
  assert clone.convention.name == 'paper'
  assert [r.get_config() for r in clone.rules] == [a.get_config(), b.get_config()]
  clone.original.set_rule_weights(w0)
  clone.adversary.set_rule_weights(w1)
  np.testing.assert_array_equal(clone(tf.constant(x), mask, fire_rate=1.0).numpy(), got)


@pytest.mark.slow
@pytest.mark.parametrize('convention', CONVENTIONS)
@pytest.mark.parametrize('k', [2, 3])
def test_multi_step_matches_numpy_on_grown_states(convention, k):
  names = ['paper/lizard/persist', 'paper/lizard/virus/lizard_persist_to_red_squareside_2',
           'paper/lizard/virus/lizard_persist_to_no_tail_squareside_2'][:k]
  rules = [pretrained.load(n, convention) for n in names]
  m = multi.MultiNCA(rules)
  g = tf.random.Generator.from_seed(k)
  x, _ = rollout.grow(m, 60, batch=2, size=48, seed=k, keep_every=0)
  x = injection.inject(x, injection.square_mask(x, 2, m.convention.padding, g), 0, 1)
  if k == 3:
    x = injection.inject(x, injection.spray_mask(x, 0.1, g), 0, 2)
  x, _ = rollout.grow(m, 30, x=x, seed=k, keep_every=0)
  x = x.numpy()
  alive = (x[..., 15:] > 0.1).sum(axis=(0, 1, 2))
  assert (alive > 0).all(), f'every rule should hold mature cells: {alive}'
  got = m(tf.constant(x), fire_rate=1.0).numpy()
  want = npref.multi_step(x, [r.get_rule_weights() for r in rules], m.convention.padding)
  assert np.abs(got - want).max() < 1e-5
