"""The fast single and Multiple NCA steps against the readable ones and tests/npref.py."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import npref
from test_model import random_state, random_weights
from test_multi import random_multi_state
from tf_multinca import CAModel, fast, model, multi, perception
from tf_multinca import bench

REPO = pathlib.Path(__file__).resolve().parents[1]

FAST = ['sparse', 'dense']
TOL = 1e-5


def make_rules(convention, k, seed=0, fire_rate=0.5):
  return [CAModel(convention=convention, fire_rate=fire_rate)
          .set_rule_weights(random_weights(seed + i)) for i in range(k)]


def max_diff(a, b):
  return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


@pytest.mark.parametrize('impl', FAST)
@pytest.mark.parametrize('convention', ['distill', 'paper'])
@pytest.mark.parametrize('k', [1, 2, 3])
def test_multi_matches_numpy_and_reference(impl, convention, k):
  rules = make_rules(convention, k)
  x = tf.constant(random_multi_state(k + 10, k))
  m = multi.MultiNCA(rules, impl=impl)
  for angle, step_size in [(0.0, 1.0), (0.4, 0.5)]:
    got = tf.function(lambda s: m(s, fire_rate=1.0, angle=angle, step_size=step_size))(x)
    want = npref.multi_step(x.numpy(), [r.get_rule_weights() for r in rules],
                            rules[0].convention.padding, angle, step_size)
    assert max_diff(got, want) < TOL
    ref = multi.reference_step(rules, x, fire_rate=1.0, angle=angle, step_size=step_size)
    assert max_diff(got, ref) < TOL


@pytest.mark.parametrize('impl', FAST)
@pytest.mark.parametrize('k', [2, 3])
def test_multi_same_fire_masks_from_same_rng(impl, k):
  rules = make_rules('paper', k)
  x = tf.constant(random_multi_state(3, k, (3, 16, 15)))
  fast_net = multi.MultiNCA(rules, impl=impl)
  ref_net = multi.MultiNCA(rules, impl='reference')
  ga, gb = tf.random.Generator.from_seed(7), tf.random.Generator.from_seed(7)
  ya, yb = x, x
  for _ in range(4):  # several steps: the generators must stay in step too
    ya = fast_net(ya, rng=ga)
    yb = ref_net(yb, rng=gb)
    assert max_diff(ya, yb) < TOL
  assert max_diff(ya, x) > 1e-3  # something happened


@pytest.mark.parametrize('impl', FAST + ['reference'])
def test_multi_noise_replaces_the_draws(impl):
  # Pre-drawn noise (what a distributed train step passes) fires exactly as the generator's
  # own draws: one [B, H, W, 1] draw per rule, in rule order, column i for rule i.
  rules = make_rules('paper', 2)
  x = tf.constant(random_multi_state(3, 2, (3, 16, 15)))
  net = multi.MultiNCA(rules, impl=impl)
  want = net(x, rng=tf.random.Generator.from_seed(5))
  g = tf.random.Generator.from_seed(5)
  noise = tf.concat([g.uniform([3, 16, 15, 1]) for _ in rules], -1)
  assert max_diff(net(x, noise=noise), want) < TOL
  swapped = net(x, noise=noise[..., ::-1])
  assert max_diff(swapped, want) > 1e-3  # the columns are not interchangeable


@pytest.mark.parametrize('impl', ['sparse', 'reference'])
def test_single_noise_replaces_the_draws(impl):
  ca = CAModel(convention='distill', impl=impl).set_rule_weights(random_weights(3))
  x = tf.constant(random_state(2, (2, 12, 12, 16)))
  want = ca(x, rng=tf.random.Generator.from_seed(9))
  noise = tf.random.Generator.from_seed(9).uniform([2, 12, 12, 1])
  assert max_diff(ca(x, noise=noise), want) < TOL
  assert max_diff(ca(x, noise=1.0 - noise), want) > 1e-3


@pytest.mark.parametrize('impl', FAST)
def test_multi_per_rule_fire_rates(impl):
  rules = make_rules('distill', 2)
  rules[1].fire_rate = 0.2
  x = tf.constant(random_multi_state(4, 2))
  a = multi.MultiNCA(rules, impl=impl)(x, rng=tf.random.Generator.from_seed(1))
  b = multi.reference_step(rules, x, rng=tf.random.Generator.from_seed(1))
  assert max_diff(a, b) < TOL


def test_sparse_runs_rules_only_where_they_apply():
  # An empty grid: no rule applies anywhere, the step is the identity (all zeros).
  rules = make_rules('paper', 2)
  x = tf.zeros([2, 8, 8, 17])
  np.testing.assert_array_equal(multi.MultiNCA(rules)(x, fire_rate=1.0).numpy(), x.numpy())
  # The rows of a rule are the cells with a non-zero coefficient; others get exactly 0.
  coef = tf.constant([[1, 0], [0, 0], [0.5, 0.5], [0, 1], [0, 0]], tf.float32)
  d = fast.sparse_multi_update(tf.zeros([1, 1, 5, 17]), coef, rules, 1.0)
  assert not d.numpy()[[1, 4]].any()
  p = tf.reshape(perception.perceive(tf.zeros([1, 1, 5, 17]), 0.0, 'zeros'), [5, 51])
  want = fast.dense_multi_update(tf.zeros([5, 17]), p, coef, rules, 1.0)
  assert max_diff(d, want) < TOL


@pytest.mark.parametrize('padding', ['zeros', 'circular'])
def test_gather_perceive(padding):
  state = tf.constant(random_multi_state(2, 2, (2, 5, 7)))
  idx = tf.constant([0, 6, 7, 34, 35, 40, 69], tf.int64)
  got = fast.gather_perceive(state, idx, padding, 0.3)
  want = tf.gather(tf.reshape(perception.perceive(state, 0.3, padding), [-1, 51]), idx)
  assert max_diff(got, want) < 1e-6
  # The first layer composed with the perception, on raw neighbourhoods, gives the same.
  w = tf.random.uniform([51, 8], -1, 1)
  nb = tf.reshape(fast.neighbourhoods(state, idx, padding), [-1, 9 * 17])
  got = tf.matmul(nb, fast.perceiving_layer(w, 17, 0.3))
  assert max_diff(got, tf.matmul(want, w)) < 1e-5


@pytest.mark.parametrize('padding', ['zeros', 'circular'])
def test_neighbourhoods_static_table_and_dynamic_shapes_agree(padding):
  # A static grid reads its neighbours through the constant table; a grid of unknown size
  # (a function traced without shapes) through per-step index arithmetic: the same values.
  state = tf.constant(random_multi_state(3, 2, (2, 5, 7)))
  idx = tf.constant([0, 4, 6, 7, 34, 35, 40, 69], tf.int64)
  static = fast.neighbourhoods(state, idx, padding)
  dynamic = tf.function(lambda s, i: fast.neighbourhoods(s, i, padding), input_signature=[
      tf.TensorSpec([None, None, None, 17]), tf.TensorSpec([None], tf.int64)])(state, idx)
  np.testing.assert_array_equal(static, dynamic)
  # Tap 0 of cell 0 is its upper-left neighbour: outside a 'zeros' grid, wrapped on a torus.
  want = np.zeros(17) if padding == 'zeros' else state[0, 4, 6].numpy()
  np.testing.assert_array_equal(static[0, 0], want)


def test_masked_neighbours_perceived_as_masked():
  # A cell outside every mask, next to a live cell, must be perceived with its masked (zero)
  # state: give it large values that masking removes.
  rules = make_rules('paper', 2)
  x = np.zeros((1, 9, 9, 17), np.float32)
  x[0, 3:6, 3:6, 15] = 1.0
  x[0, 3:6, 3:6, :15] = 0.3
  x[0, 0, 0, :15] = 50.0  # far from life: masked out
  x[0, 3, 3, 16] = 0.05  # rule 1 immature inside rule 0's body: its alpha is zeroed
  got = multi.MultiNCA(rules)(tf.constant(x), fire_rate=1.0).numpy()
  want = npref.multi_step(x, [r.get_rule_weights() for r in rules], 'circular')
  assert max_diff(got, want) < TOL


def test_dynamic_shapes_in_signature():
  rules = make_rules('paper', 2)
  for impl in FAST:
    m = multi.MultiNCA(rules, impl=impl)
    step = tf.function(lambda s, m=m: m(s, fire_rate=1.0),
                       input_signature=[tf.TensorSpec([None, None, None, 17], tf.float32)])
    for shape in [(1, 10, 12), (3, 7, 7)]:
      x = tf.constant(random_multi_state(5, 2, shape))
      assert max_diff(step(x), multi.reference_step(rules, x, fire_rate=1.0)) < TOL


def test_dense_under_xla():
  rules = make_rules('paper', 2)
  m = multi.MultiNCA(rules, impl='dense')
  x = tf.constant(random_multi_state(6, 2))
  got = tf.function(lambda s: m(s, fire_rate=1.0), jit_compile=True)(x)
  assert max_diff(got, multi.reference_step(rules, x, fire_rate=1.0)) < TOL


@pytest.mark.parametrize('impl', FAST)
def test_without_xla_masks(impl):
  rules = make_rules('distill', 2)
  x = tf.constant(random_multi_state(9, 2))
  m = multi.MultiNCA(rules, impl=impl, xla_masks=False)
  got = m(x, rng=tf.random.Generator.from_seed(2))
  want = multi.reference_step(rules, x, rng=tf.random.Generator.from_seed(2))
  assert max_diff(got, want) < TOL
  assert not multi.MultiNCA.from_config(m.get_config()).xla_masks


@pytest.mark.parametrize('compiled', [True, False])
@pytest.mark.parametrize('padding', ['zeros', 'circular'])
def test_prologue_equals_coefficients_with_their_gradient(compiled, padding):
  # The prologue's gradient is written out (g masked as the state was); TF's gradient of the
  # readable `coefficients` is the reference, bit for bit.
  x = tf.constant(random_multi_state(11, 3, (2, 7, 6)))
  fires = tf.cast(tf.random.stateless_uniform([2, 7, 6, 3], [1, 2]) < 0.5, tf.float32)
  r = tf.random.stateless_uniform([2, 7, 6, 18], [3, 4])
  prologue = multi.Prologue(compiled=compiled)
  out = {}
  for name, fn in (('prologue', prologue), ('readable', multi.coefficients)):
    with tf.GradientTape() as tape:
      tape.watch(x)
      state, coef = fn(x, fires, 3, padding)
      loss = tf.reduce_sum(state * r) + tf.reduce_sum(tf.stop_gradient(coef))
    out[name] = (state, coef, tape.gradient(loss, x))
  for got, want in zip(out['prologue'], out['readable']):
    np.testing.assert_array_equal(got.numpy(), want.numpy())
  # Masked-out cells (some, by the random alphas) get no gradient; kept ones get r.
  grad = out['prologue'][2].numpy()
  assert (grad == 0).any() and (grad == r.numpy()).any()


def test_impl_config_round_trip_and_default():
  rules = make_rules('paper', 2)
  assert multi.MultiNCA(rules).impl == 'sparse'
  m = multi.MultiNCA(rules, impl='dense')
  assert multi.MultiNCA.from_config(m.get_config()).impl == 'dense'
  with pytest.raises(ValueError, match='impl'):
    multi.MultiNCA(rules, impl='fastest')


def _rollout_grads(impl, rules, x, steps, train):
  """Loss and gradients w.r.t. rule `train`'s variables and the input, after `steps` steps."""
  m = multi.MultiNCA(rules, impl=impl)
  target = tf.constant(np.random.default_rng(0).uniform(0, 1, x.shape[1:3] + (4,)), tf.float32)

  @tf.function
  def run(x):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = x
      for _ in range(steps):
        y = m(y, fire_rate=1.0, step_size=0.5)
      rgba = tf.concat([y[..., :3], tf.reduce_sum(y[..., 15:], -1, keepdims=True)], -1)
      loss = tf.reduce_mean(tf.square(rgba - target)) + 1e-3 * tf.reduce_sum(y[..., 15])
    variables = rules[train].trainable_variables
    return loss, tape.gradient(loss, [x] + variables)

  return run(x)


@pytest.mark.parametrize('impl', FAST)
def test_gradients_match_reference(impl):
  rules = make_rules('paper', 2)
  x = tf.constant(random_multi_state(8, 2, (2, 12, 12)))
  loss_f, grads_f = _rollout_grads(impl, rules, x, 3, train=1)
  loss_r, grads_r = _rollout_grads('reference', rules, x, 3, train=1)
  np.testing.assert_allclose(loss_f.numpy(), loss_r.numpy(), rtol=1e-5)
  for gf, gr in zip(grads_f, grads_r):
    assert gf is not None
    scale = float(np.abs(gr.numpy()).max()) + 1e-6
    assert max_diff(gf, gr) / scale < 1e-4
  assert float(np.abs(grads_f[1].numpy()).max()) > 0


# The single NCA.

@pytest.mark.parametrize('convention', ['distill', 'paper'])
@pytest.mark.parametrize('angle,step_size', [(0.0, 1.0), (0.3, 0.5)])
def test_single_sparse_matches_numpy(convention, angle, step_size):
  w = random_weights(4)
  ca = CAModel(convention=convention, impl='sparse').set_rule_weights(w)
  x = random_state(5)
  got = tf.function(lambda s: ca(s, fire_rate=1.0, angle=angle, step_size=step_size))(x)
  want = npref.single_step(x, w, ca.padding, angle, step_size)
  assert max_diff(got, want) < TOL


def test_single_sparse_same_fire_masks_and_growth():
  w = random_weights(2, 0.05)
  fast_ca = CAModel(convention='paper', impl='sparse').set_rule_weights(w)
  ref_ca = CAModel(convention='paper', impl='reference').set_rule_weights(w)
  ga, gb = tf.random.Generator.from_seed(3), tf.random.Generator.from_seed(3)
  xa = xb = fast_ca.seed(2, 20)
  for _ in range(6):
    xa, xb = fast_ca(xa, rng=ga), ref_ca(xb, rng=gb)
    assert max_diff(xa, xb) < TOL


def test_single_sparse_dead_neighbour_update_counts():
  # A cell whose own neighbourhood is dead but that borders a live cell: its update can make
  # the live cell's post-update neighbourhood alive, so it must be computed.
  w = random_weights(11, 0.3)
  x = np.zeros((1, 7, 7, 16), np.float32)
  x[0, 3, 3, 3] = 0.05  # below the threshold: only the pre-alive test of neighbours matters
  x[0, 3, 4, 3] = 0.2
  x[0, 3, 4, 4:] = 0.5
  ca = CAModel(convention='distill', impl='sparse').set_rule_weights(w)
  got = ca(tf.constant(x), fire_rate=1.0)
  assert max_diff(got, npref.single_step(x, w, 'zeros')) < TOL


def test_single_gradients_match_reference():
  w = random_weights(12, 0.05)
  x = tf.constant(random_state(13, (2, 10, 10, 16)))

  def grads(impl):
    ca = CAModel(convention='paper', impl=impl).set_rule_weights(w)
    with tf.GradientTape() as tape:
      y = x
      for _ in range(3):
        y = ca(y, fire_rate=1.0)
      loss = tf.reduce_mean(tf.square(y[..., :4] - 0.5))
    return tape.gradient(loss, ca.trainable_variables)

  for gf, gr in zip(grads('sparse'), grads('reference')):
    scale = float(np.abs(gr.numpy()).max()) + 1e-6
    assert max_diff(gf, gr) / scale < 1e-4


def test_add_rows_is_the_scatter_add_bit_for_bit_with_its_gradient():
  rng = np.random.default_rng(5)
  flat = tf.constant(rng.normal(size=(40, 6)).astype(np.float32))
  need = rng.random(40) < 0.4
  rows = tf.constant(np.flatnonzero(need).astype(np.int32))
  d = tf.constant(rng.normal(size=(int(need.sum()), 6)).astype(np.float32))
  g = tf.constant(rng.normal(size=(40, 6)).astype(np.float32))

  def run(fn):
    with tf.GradientTape() as tape:
      tape.watch([flat, d])
      out = fn(flat, d)
      loss = tf.reduce_sum(out * g) + tf.reduce_sum(tf.square(out))
    return [out] + tape.gradient(loss, [flat, d])

  want = run(lambda f, u: tf.tensor_scatter_nd_add(f, rows[:, None], u))
  got = run(lambda f, u: fast.add_rows(f, rows, u))
  for a, b in zip(got, want):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  # Rows not listed are copied untouched, listed rows moved by exactly d.
  out = got[0].numpy()
  np.testing.assert_array_equal(out[~need], flat.numpy()[~need])
  assert not np.array_equal(out[need], flat.numpy()[need])


@pytest.mark.parametrize('dtype', [tf.int32, tf.int64])
def test_gather_rows_is_the_gather_bit_for_bit_with_its_gradient(dtype):
  rng = np.random.default_rng(6)
  params = tf.constant(rng.normal(size=(30, 5)).astype(np.float32))
  # Repeats (neighbourhoods overlap), rows never read, and unsorted order.
  rows = tf.constant(rng.integers(0, 20, size=90), dtype)
  g = tf.constant(rng.normal(size=(90, 5)).astype(np.float32))

  def run(fn):
    with tf.GradientTape() as tape:
      tape.watch(params)
      out = fn(params, rows)
      loss = tf.reduce_sum(out * g) + tf.reduce_sum(tf.square(out))
    return out, tf.convert_to_tensor(tape.gradient(loss, params))

  want = run(tf.gather)
  got = run(fast.gather_rows)
  for a, b in zip(got, want):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert np.all(got[1].numpy()[20:] == 0) and np.any(got[1].numpy()[:20] != 0)
  # Compiled in a graph, as in the training step.
  graph = tf.function(lambda: run(fast.gather_rows))()
  np.testing.assert_array_equal(graph[1].numpy(), want[1].numpy())


def test_scatter_add_is_the_scatter_add_with_its_gradient():
  rng = np.random.default_rng(7)
  flat = tf.constant(rng.normal(size=(30, 5)).astype(np.float32))
  once = rng.permutation([i for i in range(20) if i not in (3, 7)])[:11]
  rows = tf.constant(np.concatenate([once, [3, 7, 3, 7]]).astype(np.int64))
  d = tf.constant(rng.normal(size=(15, 5)).astype(np.float32))
  g = tf.constant(rng.normal(size=(30, 5)).astype(np.float32))

  def run(fn):
    with tf.GradientTape() as tape:
      tape.watch([flat, d])
      out = fn(flat, rows, d)
      loss = tf.reduce_sum(out * g) + tf.reduce_sum(tf.square(out))
    return [out] + tape.gradient(loss, [flat, d])

  want = run(lambda f, r, u: tf.tensor_scatter_nd_add(f, r[:, None], u))
  got = run(fast.scatter_add)
  for a, b in zip(got, want):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)
  out = got[0].numpy()
  # Rows named once are moved bit for bit as by the scatter; rows 3 and 7 by both their updates.
  np.testing.assert_array_equal(out[once], want[0].numpy()[once])
  np.testing.assert_allclose(out[3], flat.numpy()[3] + d.numpy()[rows.numpy() == 3].sum(0),
                             rtol=1e-6)
  np.testing.assert_array_equal(out[20:], flat.numpy()[20:])


@pytest.mark.parametrize('padding', ['zeros', 'circular'])
def test_masked_by_life_is_the_masking_bit_for_bit_with_its_gradient(padding):
  x = tf.constant(random_state(8, (2, 10, 10, 16)))
  pre_life = perception.alive_mask(tf.constant(random_state(9, (2, 10, 10, 16))), padding)
  g = tf.constant(random_state(10, (2, 10, 10, 16)))

  def run(fn):
    with tf.GradientTape() as tape:
      tape.watch(x)
      out = fn(x)
      loss = tf.reduce_sum(out * g) + tf.reduce_sum(tf.square(out))
    return out, tape.gradient(loss, x)

  life = model.life_mask(x, pre_life, padding)
  assert 0 < float(tf.reduce_mean(life)) < 1
  want = run(lambda s: s * tf.stop_gradient(model.life_mask(s, pre_life, padding)))
  got = run(lambda s: model.masked_by_life(s, pre_life, padding))
  for a, b in zip(got, want):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  assert np.all(got[1].numpy()[np.broadcast_to(life.numpy() == 0, x.shape)] == 0)


def test_single_impl_in_config():
  ca = CAModel(impl='reference')
  assert CAModel.from_config(ca.get_config()).impl == 'reference'
  assert CAModel().impl == 'sparse'


# The benchmark's pieces, on tiny synthetic states (the real ones need the published weights).

@pytest.mark.slow
def test_bench_rows_and_table():
  rules = make_rules('paper', 3)
  x = random_multi_state(1, 3, (2, 8, 8))
  states = bench.States(single=tf.constant(random_state(1, (2, 8, 8, 16))),
                        multi={2: tf.constant(x[..., :17]), 3: tf.constant(x)}, rules=rules,
                        target=tf.zeros([8, 8, 4]))
  assert bench.resize_state(states.multi[2], 5, 16).shape == (5, 16, 16, 17)
  rows = [bench.run_row(kind, 3, 16, states, 100.0, repeats=1, min_seconds=0.0, train_steps=2,
                       baseline_kwargs={'impl': 'reference'})
          for kind in ('single', 'multi2', 'multi3', 'train')]
  for r in rows:
    assert r.seconds > 0 and r.cell_updates > 0 and r.cpu_seconds > 0
  table = bench.format_table(rows, 100.0, 50.0)
  assert 'multi3' in table and '16x16' in table and 'speedup' in table and 'cpu ms' in table
  assert all(r.baseline_seconds > 0 for r in rows)
  with pytest.raises(MemoryError):
    bench.run_row('train', 64, 96, states, 100.0)
  assert bench.FLOPS_PER_RULE_CELL == 17248


def test_mixed_bfloat16_steps_near_float32_and_not_equal():
  """precision='mixed_bfloat16' really runs the rule matmuls in bfloat16 (8-bit mantissa):
  one step differs from float32 by about bf16's rounding, and no more."""
  w = random_weights(3)
  exact = [CAModel(convention='paper').set_rule_weights(w),
           CAModel(convention='paper').set_rule_weights(random_weights(4))]
  mixed = [CAModel(convention='paper', precision='mixed_bfloat16').set_rule_weights(
      m.get_rule_weights()) for m in exact]
  x = multi.multi_seed(2, 24, 2, 'paper')
  noise = tf.random.stateless_uniform([2, 24, 24, 2], [1, 2])
  a, b = multi.MultiNCA(exact), multi.MultiNCA(mixed)
  for _ in range(3):  # grow a few steps so that many cells are updated
    x = a(x, noise=noise)
  ya, yb = a(x, noise=noise).numpy(), b(x, noise=noise).numpy()
  diff = np.abs(ya - yb).max()
  assert 0 < diff < 0.05 * max(1.0, np.abs(ya).max()), diff
  with pytest.raises(ValueError, match='precision'):
    CAModel(precision='float16')


@pytest.mark.slow
def test_bench_binary_times_a_job_to_its_result(tmp_path, mirror):
  out = tmp_path / 'bench.txt'
  env = dict(os.environ, TF_MULTINCA_MIRROR=str(mirror), TF_CPP_MIN_LOG_LEVEL='3')
  p = subprocess.run([sys.executable, '-m', 'tools.bench', '--kinds=',
                      '--jobs=lizard_red_testing', '--job_steps=3', f'--out={out}'],
                     cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
  assert p.returncode == 0, p.stderr[-3000:]
  table = out.read_text()
  assert table.startswith('time to result\nconfig ')
  [row] = [l for l in table.splitlines() if l.startswith('lizard_red_testing')]
  steps, validations, s_per_step, final_s, full = row.split()[1:6]
  # 3 of the config's 6 steps, validating every 3: one validation among them.
  assert (steps, validations, full) == ('3', '1', '6')
  assert float(s_per_step) > 0 and float(final_s) > 0
  bad = subprocess.run([sys.executable, '-m', 'tools.bench', '--kinds=', '--jobs=nope'],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
  assert bad.returncode == 2 and '--jobs must be named configs' in bad.stderr
