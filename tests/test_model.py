"""Exact-value tests of the kernels, masks and single step against tests/npref.py."""

import numpy as np
import pytest
import tensorflow as tf

import npref
from tf_multinca import CAModel, conventions, layout, make_seed, perception, rollout

MODES = ['zeros', 'circular']


def random_weights(seed, scale=0.1):
  rng = np.random.default_rng(seed)
  return {
      'conv1/kernel': rng.normal(0, scale, (1, 1, 48, 128)).astype(np.float32),
      'conv1/bias': rng.normal(0, scale, (128,)).astype(np.float32),
      'conv2/kernel': rng.normal(0, scale, (1, 1, 128, 16)).astype(np.float32),
      'conv2/bias': rng.normal(0, scale, (16,)).astype(np.float32),
  }


def random_state(seed, shape=(2, 9, 11, 16)):
  rng = np.random.default_rng(seed)
  x = rng.uniform(-0.3, 1.0, shape).astype(np.float32)
  # Holes, so that alive masking matters.
  x[..., 3] *= rng.uniform(0, 1, shape[:3]) > 0.5
  return x


def test_kernels_expected_values():
  k = perception.perception_kernels(0.0).numpy()
  np.testing.assert_array_equal(k[..., 0], [[0, 0, 0], [0, 1, 0], [0, 0, 0]])
  np.testing.assert_array_equal(k[..., 1], np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 8)
  np.testing.assert_array_equal(k[..., 2], np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]) / 8)
  # A quarter turn maps Kx onto Ky.
  r = perception.perception_kernels(np.pi / 2).numpy()
  np.testing.assert_allclose(r[..., 1], -k[..., 2], atol=1e-7)
  np.testing.assert_allclose(r[..., 2], k[..., 1], atol=1e-7)


def test_perception_channel_order():
  # A gradient along W in channel 5 only: Kx responds at channel 3*5+1, Ky at 3*5+2 is zero.
  x = np.zeros((1, 5, 5, 16), np.float32)
  x[..., 5] = np.arange(5)[None, None, :]
  y = perception.perceive(tf.constant(x)).numpy()
  assert y.shape == (1, 5, 5, 48)
  np.testing.assert_allclose(y[0, 2, 2, 15], 2.0)    # identity
  np.testing.assert_allclose(y[0, 2, 2, 16], 1.0)    # d/dW of a unit ramp
  np.testing.assert_allclose(y[0, 2, 2, 17], 0.0)
  assert np.abs(np.delete(y[0, 2, 2], [15, 16, 17])).max() == 0


@pytest.mark.parametrize('mode', MODES)
@pytest.mark.parametrize('angle', [0.0, 0.7])
def test_perceive_matches_numpy(mode, angle):
  x = random_state(1)
  got = perception.perceive(tf.constant(x), angle, mode).numpy()
  np.testing.assert_allclose(got, npref.perceive(x, angle, mode), atol=1e-6)


def test_zero_and_circular_differ_at_edges():
  x = random_state(2)
  z = perception.perceive(tf.constant(x), 0.0, 'zeros').numpy()
  c = perception.perceive(tf.constant(x), 0.0, 'circular').numpy()
  np.testing.assert_allclose(z[:, 1:-1, 1:-1], c[:, 1:-1, 1:-1], atol=1e-6)
  assert np.abs(z[:, 0] - c[:, 0]).max() > 1e-3


@pytest.mark.parametrize('mode', MODES)
def test_alive_mask_matches_numpy(mode):
  x = random_state(3)
  got = perception.alive_mask(tf.constant(x), mode).numpy()
  np.testing.assert_array_equal(got, npref.maxpool3x3(x[..., 3:4], mode) > 0.1)


def test_alive_mask_strict_threshold():
  x = np.zeros((1, 5, 5, 16), np.float32)
  x[0, 2, 2, 3] = 0.1
  assert not perception.alive_mask(tf.constant(x)).numpy().any()
  x[0, 2, 2, 3] = 0.1001
  assert perception.alive_mask(tf.constant(x)).numpy().sum() == 9


def test_circular_alive_mask_wraps():
  x = np.zeros((1, 5, 5, 16), np.float32)
  x[0, 0, 0, 3] = 1.0
  assert perception.alive_mask(tf.constant(x), 'circular').numpy()[0, 4, 4, 0]
  assert not perception.alive_mask(tf.constant(x), 'zeros').numpy()[0, 4, 4, 0]


@pytest.mark.parametrize('convention', ['distill', 'paper'])
@pytest.mark.parametrize('angle,step_size', [(0.0, 1.0), (0.3, 0.5)])
def test_single_step_matches_numpy(convention, angle, step_size):
  w = random_weights(4)
  ca = CAModel(convention=convention).set_rule_weights(w)
  x = random_state(5)
  got = ca(tf.constant(x), fire_rate=1.0, angle=angle, step_size=step_size).numpy()
  mode = conventions.get_convention(convention).padding
  want = npref.single_step(x, w, mode, angle, step_size)
  np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize('convention', ['distill', 'paper'])
def test_fire_mask_convention(convention):
  c = conventions.get_convention(convention)
  u = tf.constant([[[[0.25]], [[0.5]], [[0.75]]]])
  got = perception.fire_mask(u, 0.5, c.fire_inclusive).numpy().ravel()
  np.testing.assert_array_equal(got, [1, 1, 0] if convention == 'distill' else [1, 0, 0])


def test_stochastic_update_shares_one_number_per_cell():
  ca = CAModel().set_rule_weights(random_weights(6))
  x = tf.constant(random_state(7, (1, 16, 16, 16)))
  x = x * tf.constant(np.ones(16, np.float32))
  full = ca.rule(x).numpy()
  g = tf.random.Generator.from_seed(0)
  pre = perception.alive_mask(x).numpy()
  y = ca(x, fire_rate=0.5, rng=g).numpy()
  # Cells alive before and after either moved by the full dx on every channel, or not at all.
  keep = pre[..., 0] & (np.abs(y).sum(-1) > 0)
  moved = np.abs(y - x.numpy() - full).max(-1) < 1e-5
  still = np.abs(y - x.numpy()).max(-1) < 1e-7
  assert np.all((moved | still)[keep])
  assert moved[keep].any() and still[keep].any()


def test_seeds():
  d = make_seed(2, None, convention='distill').numpy()
  p = make_seed(2, None, convention='paper').numpy()
  assert d.shape == (2, 72, 72, 16) and p.shape == (2, 48, 48, 16)
  np.testing.assert_array_equal(d[0, 36, 36], [0, 0, 0] + [1] * 13)
  np.testing.assert_array_equal(p[0, 24, 24], [0, 0, 0, 1] + [0] * 12)
  assert d.sum() == 2 * 13 and p.sum() == 2


def test_rng_reproducible():
  ca = CAModel().set_rule_weights(random_weights(8))
  x = ca.seed(2, 24)
  a = ca(x, rng=tf.random.Generator.from_seed(3))
  b = ca(x, rng=tf.random.Generator.from_seed(3))
  np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_last_layer_zero_initialised_and_identity_step():
  ca = CAModel()
  assert not ca.conv2.kernel.numpy().any() and not ca.conv2.bias.numpy().any()
  x = ca.seed(1, 16)
  np.testing.assert_array_equal(ca(x, fire_rate=1.0).numpy(), x.numpy())
  assert ca.count_params() == 8336
  assert len(ca.trainable_variables) == 4


def test_config_and_weights_round_trip(tmp_path):
  ca = CAModel(fire_rate=0.3, convention='paper').set_rule_weights(random_weights(9))
  path = tmp_path / 'ca.weights.h5'
  ca.save_weights(str(path))
  clone = CAModel.from_config(ca.get_config())
  assert clone.convention.name == 'paper' and clone.fire_rate == 0.3
  clone.load_weights(str(path))
  for name, value in ca.get_rule_weights().items():
    np.testing.assert_array_equal(clone.get_rule_weights()[name], value)


def test_wrong_shape_named():
  w = random_weights(10)
  w['conv2/bias'] = np.zeros(15, np.float32)
  del w['conv1/bias']
  w['extra'] = np.zeros(1)
  with pytest.raises(ValueError) as e:
    CAModel().set_rule_weights(w, source='bad.pt')
  msg = str(e.value)
  assert 'conv2/bias' in msg and '(15,)' in msg and 'conv1/bias' in msg and 'extra' in msg
  assert 'bad.pt' in msg


def test_unknown_convention():
  with pytest.raises(ValueError, match='unknown convention'):
    CAModel(convention='pytorch')
  assert layout.multi_channels(2) == 17


def test_init_seed_fixes_the_initial_rule():
  a, b = CAModel(init_seed=3), CAModel(init_seed=3)
  np.testing.assert_array_equal(a.conv1.kernel.numpy(), b.conv1.kernel.numpy())
  assert not np.array_equal(a.conv1.kernel.numpy(), CAModel(init_seed=4).conv1.kernel.numpy())
  assert not np.any(a.conv2.kernel.numpy()) and not np.any(a.conv1.bias.numpy())
  assert CAModel.from_config(a.get_config()).init_seed == 3


def test_grow_traces_once_and_draws_as_a_fresh_generator():
  # Validations grow the same model again and again: one trace, and every call draws the
  # fire masks of Generator.from_seed(seed), whatever was grown before.
  ca = CAModel(convention='paper').set_rule_weights(random_weights(5))
  rng = tf.random.Generator.from_seed(3)
  want = ca.seed(2, 16)
  for _ in range(6):
    want = ca(want, rng=rng)
  a, _ = rollout.grow(ca, 6, batch=2, size=16, seed=3, keep_every=0)
  rollout.grow(ca, 4, batch=2, size=16, seed=9, keep_every=0)
  b, kept = rollout.grow(ca, 6, batch=2, size=16, seed=3, keep_every=3)
  np.testing.assert_allclose(a, want, atol=1e-6)
  np.testing.assert_array_equal(a, b)
  assert [t for t, _ in kept] == [0, 3, 6]
  _, step = rollout._traced_step(ca, None)
  assert step.experimental_get_tracing_count() == 1
