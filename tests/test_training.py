"""Training pieces: weight and learning-rate schedules, the pool, export round trips, registry."""

import json

import numpy as np
import pytest
import tensorflow as tf

from test_model import random_weights
from test_multi import random_multi_state
from tf_multinca import CAModel, configs, hub, metrics, multi, registry, saved_model
from tf_multinca import targets, weights_file
from tf_multinca import model as model_lib
from tf_multinca.pretrained import formats
from tf_multinca.training import pool as pool_lib, schedules
from tf_multinca.training import loop
from tf_multinca.training import step as step_lib


def ages(start, steps, batch=1):
  """`[T, B]` ages after each of `steps` steps from `start`."""
  return np.arange(1, steps + 1)[:, None] + np.asarray(start)[None, :] * np.ones([1, batch],
                                                                                 np.int64)


def test_window_weights_average_over_the_window():
  w = schedules.normalised_weights(ages([0, 60, 200], 10, 3), 'window', start=64).numpy()
  np.testing.assert_allclose(w[:, 0], 0.0)  # ages 1..10: before the window
  assert np.allclose(w[:3, 1], 0.0) and np.allclose(w[3:, 1], 1 / 7)  # ages 64..70
  np.testing.assert_allclose(w[:, 2], 0.1)  # every step inside
  w = schedules.normalised_weights(ages([60], 10), 'window', start=62, end=65).numpy()[:, 0]
  np.testing.assert_allclose(w, [0, 1 / 4, 1 / 4, 1 / 4, 1 / 4, 0, 0, 0, 0, 0])


def test_sigmoid_and_exponential_weights():
  s = schedules.normalised_weights(ages([0], 100), 'sigmoid', start=50, width=5).numpy()[:, 0]
  assert abs(s.sum() - 1) < 1e-5 and np.all(np.diff(s) >= 0) and s[0] < 1e-5
  e = schedules.normalised_weights(ages([10 ** 6], 50), 'exponential', start=0,
                                   width=2).numpy()[:, 0]
  assert np.isfinite(e).all() and abs(e.sum() - 1) < 1e-5 and e[-1] > e[-2] > e[0]
  with pytest.raises(ValueError, match='weight shape'):
    schedules.normalised_weights(ages([0], 3), 'cosine')


def test_learning_rate_schedules():
  c = configs.get_config('lizard_red', ['lr_boundaries=10', 'lr_values=1e-2,1e-3'])
  lr = schedules.learning_rate(c)
  assert abs(float(lr(5)) - 1e-2) < 1e-9 and abs(float(lr(11)) - 1e-3) < 1e-9
  c = c.replace(lr_schedule='step_decay', lr=1.0, lr_decay_rate=0.5, lr_decay_steps=10)
  lr = schedules.learning_rate(c)
  assert float(lr(9)) == 1.0 and float(lr(25)) == 0.25
  assert schedules.learning_rate(c.replace(lr_schedule='constant')) == 1.0


def test_pool_sample_commit_and_damage():
  p = pool_lib.SamplePool(6, [5, 5, 2])
  rng = tf.random.Generator.from_seed(0)
  p.fill(tf.ones([6, 5, 5, 2]))
  idx = p.sample(4, rng)
  assert len(set(idx.numpy().tolist())) == 4
  x, a, l = p.gather(idx)
  p.commit(idx, x * 2, a + 7, l + 3)
  assert int(tf.reduce_sum(p.ages)) == 28 and float(tf.reduce_sum(p.losses)) == 12
  assert float(tf.reduce_sum(p.states)) == 6 * 50 + 4 * 50
  keep = pool_lib.circle_damage(tf.constant([3, 32, 32, 1]), rng).numpy()
  assert keep.shape == (3, 32, 32, 1) and set(np.unique(keep)) <= {0.0, 1.0}
  frac = 1 - keep.mean((1, 2, 3))
  assert np.all(frac > 0.002) and np.all(frac < 0.2)


def trained_like_model(seed=0, convention='paper'):
  return CAModel(convention=convention).set_rule_weights(random_weights(seed))


def test_saved_model_and_h5_round_trip(tmp_path):
  ca = trained_like_model(1)
  w = ca.get_rule_weights()
  saved_model.write(ca, tmp_path / 'sm', info={'note': 'x'})
  back, info = saved_model.read(tmp_path / 'sm')
  assert model_lib.max_weight_difference(w, back) == 0.0 and info['convention'] == 'paper'
  loaded = tf.saved_model.load(str(tmp_path / 'sm'))
  x = ca.seed(1, 16)
  # The SavedModel steps exactly as the model it was written from.
  y = saved_model.call_signature(loaded.step, x)
  np.testing.assert_allclose(y.numpy(), ca(x, fire_rate=1.0).numpy(), atol=1e-5)
  assert np.abs(y.numpy() - x.numpy()).max() > 1e-3
  weights_file.save(ca, tmp_path / 'm.weights.h5')
  assert model_lib.max_weight_difference(w, weights_file.read(tmp_path / 'm.weights.h5')) == 0.0
  with pytest.raises(ValueError, match='weights.h5'):
    weights_file.save(ca, tmp_path / 'm.h5')
  # Nothing temporary is left behind.
  assert sorted(p.name for p in tmp_path.iterdir()) == ['m.weights.h5', 'm.weights.json', 'sm']


def test_webgl_round_trip_within_quantisation(tmp_path):
  ca = trained_like_model(2, 'distill')
  w = ca.get_rule_weights()
  formats.write_webgl_json(ca.get_rule_weights(), tmp_path / 'm.json')
  back = hub.load(tmp_path / 'm.json', 'distill').get_rule_weights()
  for name in w:
    scale = 2 * np.abs(w[name]).max()
    assert np.abs(w[name] - back[name]).max() <= scale / 255 / 2 + 1e-6, name


def test_pairing_saved_model_keeps_both_rules(tmp_path):
  a, b = trained_like_model(3), trained_like_model(4)
  saved_model.write([a, b], tmp_path / 'pair')
  adv, info = saved_model.read(tmp_path / 'pair')
  orig, _ = saved_model.read(tmp_path / 'pair', rule=0)
  assert info['rules'] == 2
  assert model_lib.max_weight_difference(adv, b.get_rule_weights()) == 0.0
  assert model_lib.max_weight_difference(orig, a.get_rule_weights()) == 0.0
  loaded = tf.saved_model.load(str(tmp_path / 'pair'))
  x = tf.zeros([1, 12, 12, 17])
  assert saved_model.call_signature(loaded.step, x).shape == (1, 12, 12, 17)


def test_registry_register_lookup_resolve(tmp_path, monkeypatch):
  ca = trained_like_model(5)
  h5 = weights_file.save(ca, tmp_path / 'w' / 'model.weights.h5')
  manifest = tmp_path / 'local.json'
  registry.register('local/liz', h5, convention='paper', role='persistent',
                    target='paper/images/lizard', manifest=manifest)
  doc = json.loads(manifest.read_text())
  assert doc['entries'][0]['name'] == 'local/liz'
  assert registry.lookup('local/liz', [manifest])['convention'] == 'paper'
  assert registry.lookup('local/liz', []) is None
  monkeypatch.setenv(registry.LOCAL_MANIFEST_ENV, str(manifest))
  back = hub.load('local/liz')
  assert back.convention.name == 'paper'
  assert model_lib.max_weight_difference(back.get_rule_weights(), ca.get_rule_weights()) == 0.0
  assert hub.describe('local/liz')['target'] == 'paper/images/lizard'
  # A path to the weights resolves too.
  assert hub.load(str(h5)).convention.name == 'paper'
  with pytest.raises(registry.RegistryError, match='already registered'):
    registry.register('local/liz', h5, convention='paper', manifest=manifest, overwrite=False)


@pytest.mark.parametrize('name', ['', '../x', 'a b', 'x' * 200, '/abs'])
def test_registry_rejects_bad_names(name):
  with pytest.raises(registry.RegistryError, match='bad model name'):
    registry.check_name(name)


def test_registry_refuses_a_corrupt_manifest(tmp_path):
  bad = tmp_path / 'bad.json'
  bad.write_text('{"not": "a manifest"}')
  with pytest.raises(registry.RegistryError, match='not a local manifest'):
    registry.lookup('x', [bad])
  assert bad.read_text() == '{"not": "a manifest"}'


@pytest.mark.slow
def test_adversary_init_from_another_model(tmp_path, monkeypatch):
  start = trained_like_model(7)
  h5 = weights_file.save(start, tmp_path / 'start.weights.h5')
  c = configs.get_config('lizard_red_testing', [f'adversary_init=from:{h5}'])
  t = loop.Trainer(c, tmp_path / 'run', log=lambda m: None)
  assert model_lib.max_weight_difference(t.trainee.get_rule_weights(),
                                   start.get_rule_weights()) == 0.0
  with pytest.raises(configs.ConfigError, match='from:NAME'):
    configs.get_config('lizard_red_testing', ['adversary_init=warm'])


def test_target_and_old_equal_the_readable_losses():
  # One projection of the channels (a 0/1 matrix product) gives the slices' values: RGB are
  # copies, exact; the alpha is the sum of the rules' alphas, whose summation order the matmul
  # kernel picks (1 ulp apart on an AMD EPYC in CI).
  for k in (2, 3):
    x = tf.constant(random_multi_state(4, k, (3, 10, 10)))
    target = tf.random.stateless_uniform([10, 10, 4], [1, k])
    lt, old, rgba = metrics.target_and_old(x, target)
    np.testing.assert_allclose(lt, metrics.target_loss(x, target), rtol=1e-6)
    np.testing.assert_allclose(old, metrics.old_cells(x), rtol=1e-6)
    view = metrics.rgba_view(x)
    np.testing.assert_array_equal(rgba[..., :3], view[..., :3])
    np.testing.assert_allclose(rgba[..., 3], view[..., 3], rtol=1e-6)


ROLLOUT_STEPS = 5


def _rollout_inputs(tmp_path, overrides):
  """A testing Trainer of lizard_red and one rollout's inputs: a pool batch, ages [0, 2] and
  `ROLLOUT_STEPS` steps of fire noise."""
  c = configs.get_config('lizard_red_testing', ['l1_start=3'] + overrides)
  t = loop.Trainer(c, tmp_path / 'run', log=lambda m: None)
  t.restore_or_init()
  _, x0, _ = t.samples.batch(False)
  noise = tf.random.stateless_uniform([ROLLOUT_STEPS] + x0.shape[:3] + [2], [3, 4])
  return c, t, x0, tf.constant([0, 2], tf.int32), noise


@pytest.mark.parametrize('overrides', [[], ['l_outside=1e-3', 'l1_schedule=sigmoid',
                                            'l2_start=1']])
def test_train_step_losses_are_the_weighted_per_step_losses(tmp_path, monkeypatch, mirror,
                                                            overrides):
  # The rollout accumulates its losses as it goes; a readable loop that keeps every step's
  # L_target and N_old and weights them afterwards must give the same per-sample losses.
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  c, t, x0, ages, noise = _rollout_inputs(tmp_path, overrides)
  step = t.train_step_fn
  x, per_sample, part_target, part_old = step.rollout(x0, noise, ages)
  x_ref, lts, olds = x0, [], []
  for i in range(ROLLOUT_STEPS):
    x_ref = t.net(x_ref, fire_rate=c.fire_rate, noise=noise[i])
    lts.append(metrics.target_loss(x_ref, step.target))
    old = c.l2 * metrics.old_cells(x_ref)
    if c.l_outside:
      alpha = tf.nn.relu(tf.reduce_sum(x_ref[..., 15:], -1))
      old += c.l_outside * tf.reduce_sum(alpha * step.outside, [1, 2])
    olds.append(old)
  n = ages.numpy()[None, :] + np.arange(1, ROLLOUT_STEPS + 1)[:, None]
  w1 = schedules.normalised_weights(n, c.l1_schedule, c.l1_start, c.l1_end, c.l1_width)
  w2 = schedules.normalised_weights(n, c.l2_schedule, c.l2_start, c.l2_end, c.l2_width)
  want_target = c.l1 * tf.reduce_sum(w1 * tf.stack(lts), 0)
  want_old = tf.reduce_sum(w2 * tf.stack(olds), 0)
  assert float(tf.reduce_max(tf.abs(x - x_ref))) < 1e-5
  np.testing.assert_allclose(part_target, want_target, rtol=1e-5, atol=1e-9)
  np.testing.assert_allclose(part_old, want_old, rtol=1e-5, atol=1e-9)
  np.testing.assert_allclose(per_sample, want_target + want_old, rtol=1e-5, atol=1e-9)
  assert float(part_target[1]) > 0 and float(part_old[1]) > 0  # both terms are exercised


def test_a_cut_target_is_what_the_run_trains_and_validates_on(tmp_path, monkeypatch, mirror):
  # target_alpha_cut empties the target's faint cells for the loss and the validations (the
  # overgrowth penalty's 'outside' then covers them too).
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  c, t, _, _, _ = _rollout_inputs(tmp_path, ['target=self:20', 'target_alpha_cut=0.5'])
  whole = targets.build_target('self:20', c.convention, 24, original=t.original)
  faint = whole[..., 3] < 0.5
  assert ((whole[..., 3] > 0) & faint).any() and (~faint).any()
  trained = t.train_step_fn.target.numpy()
  np.testing.assert_array_equal(trained[faint], 0.0)
  np.testing.assert_array_equal(trained[~faint], whole[~faint])
  np.testing.assert_array_equal(t.train_step_fn.outside.numpy(), trained[..., 3] <= 0)
  np.testing.assert_array_equal(t.evaluator.target, trained)


def test_train_step_gradient_is_the_readable_steps(tmp_path, monkeypatch, mirror):
  # The fast rollout (prepared matrices, accumulated losses, no gradient through the
  # coefficients) has the gradient of the readable step's rollout and losses.
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  c, t, x0, ages, noise = _rollout_inputs(tmp_path, ['adversary_init=random'])
  step = t.train_step_fn
  variables = step_lib.rule_vars(t.trainee)
  for v in variables:  # a rule that does something (random init has a zero last layer)
    v.assign(v + tf.random.stateless_normal(v.shape, [7, len(v.shape)], stddev=0.02))
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(step.rollout(x0, noise, ages)[1])
  fast_grads = tape.gradient(loss, variables)
  readable = multi.MultiNCA([t.original, t.trainee], impl='reference')
  w1, w2 = step.loss_weights(ages, ROLLOUT_STEPS)
  with tf.GradientTape() as tape:
    x, total = x0, 0.0
    for i in range(ROLLOUT_STEPS):
      x = readable(x, fire_rate=c.fire_rate, noise=noise[i])
      total += w1[i] * metrics.target_loss(x, step.target) + w2[i] * c.l2 * metrics.old_cells(x)
    loss = tf.reduce_sum(total)
  want = tape.gradient(loss, variables)
  for g, w in zip(fast_grads, want):
    assert float(tf.reduce_max(tf.abs(w))) > 0
    np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-6 * float(tf.reduce_max(tf.abs(w))))


@pytest.mark.parametrize('distance', ['rms', 'norm'])
def test_l3_term_is_the_configured_distance(tmp_path, monkeypatch, mirror, distance):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  c = configs.get_config('perturbation_copy_l3_testing', [f'l3_distance={distance}',
                                                          'l3=0.5'])
  t = loop.Trainer(c, tmp_path / 'run', log=lambda m: None)
  t.restore_or_init()
  for v in step_lib.rule_vars(t.trainee):
    v.assign(v + 0.01)  # every parameter 0.01 off the original
  n = sum(int(np.prod(v.shape)) for v in step_lib.rule_vars(t.trainee))
  want = 0.01 * (np.sqrt(n) if distance == 'norm' else 1.0)
  assert float(t.train_step_fn.weight_distance()) == pytest.approx(want, rel=1e-3)
  out = t.train_step()
  assert float(out['loss/l3']) == pytest.approx(0.5 * want, rel=1e-3)
  # The reported |dw| is the RMS whatever the penalty's distance (after the step's update).
  rms = float(metrics.weight_distance(t.trainee, t.original))
  assert float(out['weight_distance']) == pytest.approx(rms, rel=1e-5) and rms < 0.02


def test_an_adversary_stops_on_the_loss_only_when_its_takeover_is_complete():
  c = configs.get_config('perturbation_copy_testing', ['stop_loss=0.01'])
  assert c.stop_complete == 1.0  # the default: every validation seed taken over
  done = {'score': 0.009, 'complete': 1.0}
  assert loop.reached_stop(c, True, done)
  assert not loop.reached_stop(c, True, dict(done, complete=29 / 32))
  assert not loop.reached_stop(c, True, dict(done, score=0.011))
  assert loop.reached_stop(c.replace(stop_complete=0.9), True, dict(done, complete=29 / 32))
  # A single NCA has no takeover: the score alone decides.
  assert loop.reached_stop(c, False, {'score': 0.009})


def test_with_a_stop_criterion_the_best_weights_are_a_complete_takeovers():
  c = configs.get_config('perturbation_copy_testing', ['stop_loss=0.01'])
  complete, partial = {'complete': 1.0}, {'complete': 31 / 32}
  # A complete validation beats a lower score that left an original cell somewhere ...
  assert loop.better_validation(c, True, complete, 0.02, best_score=0.015, best_complete=False)
  assert not loop.better_validation(c, True, partial, 0.015, best_score=0.02, best_complete=True)
  # ... and among equals the score decides; a non-finite score never wins.
  assert loop.better_validation(c, True, partial, 0.015, best_score=0.02, best_complete=False)
  assert not loop.better_validation(c, True, complete, 0.03, best_score=0.02, best_complete=True)
  assert not loop.better_validation(c, True, complete, float('nan'), np.inf, False)
  # Without a stop criterion (the static experiments) the score alone decides, as before.
  free = c.replace(stop_loss=0.0)
  assert not loop.better_validation(free, True, complete, 0.02, 0.015, False)
  assert loop.better_validation(free, False, {}, 0.01, 0.015, False)
