"""SavedModel, TF.js and WebGL export (tf_multinca.saved_model, .tfjs, .export; tools.export).

The TF.js conversion needs the optional converter (`.ci/install_web.sh`): without it the tests
that convert fail, saying how to install it.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from test_model import random_weights
from tf_multinca import CAModel, export, hub, multi, saved_model, tfjs
from tf_multinca.pretrained import formats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Ops a converted graph must not contain: they do not convert, or need executeAsync in a step.
FORBIDDEN_OPS = {'StatelessRandomUniformV2', 'StatelessRandomGetKeyCounter', 'RngReadAndSkip',
                 'StatefulUniform', 'Einsum', 'Where', 'GatherNd', 'ScatterNd'}


def random_state(seed, channels, shape=(2, 14, 15)):
  rng = np.random.default_rng(seed)
  x = rng.uniform(-0.2, 0.9, shape + (channels,)).astype(np.float32)
  x[..., 3:] *= rng.uniform(0, 1, shape + (1,)) > 0.3  # some dead cells
  return tf.constant(x)


def make_single(convention, seed=0):
  return CAModel(convention=convention).set_rule_weights(random_weights(seed))


def make_pairing(convention='paper'):
  rules = [CAModel(convention=convention).set_rule_weights(random_weights(i)) for i in (1, 2)]
  return multi.MultiNCA(rules)


def require_converter():
  if not tfjs.available():
    pytest.fail(f'the TF.js converter is not installed: run .ci/install_web.sh (or '
                f'{tfjs.TFJS_INSTALL})')


def assert_no_forbidden_ops(ops, where):
  supported = tfjs.supported_ops()
  unsupported = sorted(set(ops) - supported)
  assert not unsupported, f'{where}: ops TF.js does not support: {unsupported}'
  forbidden = sorted(set(ops) & FORBIDDEN_OPS)
  assert not forbidden, f'{where}: {forbidden}'


# --------------------------------------------------------------------------------------------
# SavedModel
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize('kind,convention', [('single', 'distill'), ('single', 'paper'),
                                             ('pairing', 'paper'), ('pairing', 'distill')])
def test_reloaded_saved_model_is_identical(tmp_path, kind, convention):
  model = make_single(convention) if kind == 'single' else make_pairing(convention)
  form = saved_model.export_form(model)
  saved_model.write(model, tmp_path / 'sm')
  loaded = tf.saved_model.load(str(tmp_path / 'sm'))
  assert sorted(loaded.signatures) == ['rollout', 'step']
  x = random_state(3, saved_model.channels_of(model))
  for angle, step_size in ((0.0, 1.0), (0.7, 0.5)):
    got = saved_model.call_signature(loaded.signatures['step'], x, angle=angle, step_size=step_size)
    want = form(x, fire_rate=1.0, angle=angle, step_size=step_size)
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    # The model's own default form computes the same step (to float rounding).
    ref = model(x, fire_rate=1.0, angle=angle, step_size=step_size)
    np.testing.assert_allclose(got.numpy(), ref.numpy(), atol=1e-5)
  got = saved_model.call_signature(loaded.signatures['rollout'], x, steps=3)
  want = x
  for _ in range(3):
    want = form(want, fire_rate=1.0)
  np.testing.assert_array_equal(got.numpy(), want.numpy())
  # steps = 0 returns the input unchanged.
  same = saved_model.call_signature(loaded.signatures['rollout'], x, steps=0)
  np.testing.assert_array_equal(same.numpy(), x.numpy())
  # The same SavedModel carries every rule's canonical weights, read back without Keras.
  rules = model.rules if kind == 'pairing' else [model]
  for i, r in enumerate(rules):
    weights, info = saved_model.read(tmp_path / 'sm', rule=i)
    assert info['convention'] == convention and info['rules'] == len(rules)
    for name, value in r.get_rule_weights().items():
      np.testing.assert_array_equal(weights[name], value)


def test_signatures_and_random_update(tmp_path):
  model = make_pairing()
  saved_model.write(model, tmp_path / 'sm')
  loaded = tf.saved_model.load(str(tmp_path / 'sm'))
  _, step_in = loaded.signatures['step'].structured_input_signature
  assert {k: (v.shape.as_list(), v.dtype) for k, v in step_in.items()} == {
      'x': ([None, None, None, 17], tf.float32), 'fire_rate': ([], tf.float32),
      'angle': ([], tf.float32), 'step_size': ([], tf.float32)}
  _, roll_in = loaded.signatures['rollout'].structured_input_signature
  assert roll_in['steps'].dtype == tf.int32 and roll_in['x'].shape.as_list()[-1] == 17
  # fire_rate < 1 draws fresh tf.random.uniform masks: two calls differ, both stay finite.
  x = random_state(4, 17, (1, 24, 24))
  a = saved_model.call_signature(loaded.signatures['step'], x, fire_rate=0.5).numpy()
  b = saved_model.call_signature(loaded.signatures['step'], x, fire_rate=0.5).numpy()
  assert np.isfinite(a).all() and not np.array_equal(a, b)


def test_export_form_shares_or_copies_weights():
  pair = make_pairing()
  form = saved_model.export_form(pair)
  assert form.impl == saved_model.EXPORT_IMPL
  assert form.rules[0] is pair.rules[0]  # the same variables
  single = make_single('paper')
  copy = saved_model.export_form(single)
  for name, value in single.get_rule_weights().items():
    np.testing.assert_array_equal(copy.get_rule_weights()[name], value)
  assert saved_model.export_form(form) is form
  with pytest.raises(TypeError, match='CAModel or a MultiNCA'):
    saved_model.export_form(object())


def test_describe_writes_the_layout_for_the_page():
  meta = export.describe(make_pairing(), 'toy', {'injection': {'kind': 'square', 'side': 2}})
  assert meta['kind'] == 'pairing' and meta['channels'] == 17 and meta['grid'] == [48, 48]
  assert meta['alpha_channels'] == [15, 16]
  assert meta['seed_cells'] == [[24, 24, 15, 1.0]]  # the paper's seed: only A_0 at the centre
  assert meta['convention']['padding'] == 'circular'
  single = export.describe(make_single('distill'))
  assert single['alpha_channels'] == [3] and single['grid'] == [72, 72]
  assert len(single['seed_cells']) == 13  # Distill's seed: alpha and the 12 hidden channels
  json.dumps(meta)


# --------------------------------------------------------------------------------------------
# TF.js op lists
# --------------------------------------------------------------------------------------------


def test_model_ops_reads_nodes_and_loop_bodies():
  doc = {'modelTopology': {
      'node': [{'op': 'Placeholder'}, {'op': 'While'}],
      'library': {'function': [{'nodeDef': [{'op': 'StatelessRandomUniformV2'},
                                            {'op': 'AddV2'}]}]}}}
  assert tfjs.model_ops(doc) == ['AddV2', 'Placeholder', 'StatelessRandomUniformV2', 'While']
  with pytest.raises(tfjs.UnsupportedOpsError, match='StatelessRandomUniformV2') as e:
    tfjs.check_ops(doc, supported={'AddV2', 'Placeholder', 'While'})
  assert e.value.ops == ['StatelessRandomUniformV2']


def test_supported_ops_come_from_the_converter():
  require_converter()
  ops = tfjs.supported_ops()
  assert {'RandomUniform', 'While', 'DepthwiseConv2dNative', 'MaxPool', '_FusedConv2D'} <= ops
  assert 'StatelessRandomUniformV2' not in ops


def test_missing_converter_says_how_to_install(tmp_path, monkeypatch):
  monkeypatch.setattr(tfjs, 'available', lambda: False)
  with pytest.raises(export.ExportError, match='pip install --no-deps tensorflowjs==4.22.0'):
    export.export(make_single('paper'), tmp_path / 'x', formats=('tfjs',))
  assert not (tmp_path / 'x').exists()  # refused before any work
  with pytest.raises(export.ExportError, match='expected some of'):
    export.export(make_single('paper'), tmp_path / 'y', formats=('onnx',))


@pytest.mark.slow
def test_single_rule_converts_to_supported_ops(tmp_path):
  require_converter()
  model = make_single('distill')
  paths = export.export(model, tmp_path / 'single', formats=('tfjs', 'webgl_json'))
  step_ops = tfjs.model_ops(paths['tfjs/step'])
  roll_ops = tfjs.model_ops(paths['tfjs/rollout'])
  assert_no_forbidden_ops(step_ops, 'step')
  assert_no_forbidden_ops(roll_ops, 'rollout')
  assert 'RandomUniform' in step_ops and 'While' in roll_ops
  meta = json.loads(paths['meta'].read_text())
  assert meta['kind'] == 'single' and meta['selfcheck']['shape'] == [1, 72, 72, 16]
  back, _ = formats.read_weights(paths['webgl/0'])
  for name, value in model.get_rule_weights().items():
    scale = 2 * np.abs(value).max()
    np.testing.assert_allclose(back[name], value, atol=scale / 255 / 2 + 1e-6)


# --------------------------------------------------------------------------------------------
# The published lizard-to-red pairing (shared with tests/test_web.py)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope='session')
def lizard_red_export(mirror, tmp_path_factory):
  """lizard_red exported as saved_model, tfjs and webgl_json into a models dir with index.json.

  tests/test_web.py imports this fixture, which makes it a second fixture definition with its
  own cache: the export is kept at a fixed place of this session's temp directory so that it
  is made once per session.

  Returns:
    The models directory.
  """
  require_converter()
  out = tmp_path_factory.getbasetemp() / 'lizard_red_web_models'
  if (out / 'index.json').is_file():
    return out
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv('TF_MULTINCA_MIRROR', str(mirror))
    r = hub.load_pairing('lizard_red')
    model = multi.MultiNCA([r.original, r.adversary])
    info = dict(original=r.original_name, adversary=r.adversary_name, injection=r.injection,
                target=r.target, pairing='lizard_red')
    export.export(model, out / 'lizard_red', formats=('saved_model', 'tfjs', 'webgl_json'),
                  info=info)
  export.write_index(out)  # last: its presence marks a complete export
  return out


@pytest.mark.slow
def test_lizard_red_export(lizard_red_export):
  d = lizard_red_export / 'lizard_red'
  for sig in saved_model.SIGNATURES:
    ops = tfjs.model_ops(d / 'tfjs' / sig / 'model.json')
    assert_no_forbidden_ops(ops, f'lizard_red {sig}')
  assert 'While' in tfjs.model_ops(d / 'tfjs' / 'rollout' / 'model.json')
  index = json.loads((lizard_red_export / 'index.json').read_text())
  assert [m['name'] for m in index['models']] == ['lizard_red']
  meta = json.loads((d / 'meta.json').read_text())
  assert meta['injection'] == {'kind': 'square', 'side': 2}
  assert meta['adversary'] == hub.PAIRINGS['lizard_red']
  assert meta['selfcheck']['alive_in'] > 300
  assert sorted(p.name for p in (d / 'webgl').iterdir()) == ['rule0.json', 'rule1.json']
  # The self-check output is the reloaded SavedModel's step of the self-check input.
  raw = np.frombuffer((d / 'selfcheck.bin').read_bytes(), '<f4')
  x, y = raw.reshape(2, 1, 48, 48, 17)
  loaded = tf.saved_model.load(str(d / 'saved_model'))
  np.testing.assert_array_equal(saved_model.call_signature(loaded.signatures['step'], x).numpy(), y)
  assert (x[..., 16] > 0.1).sum() > 0  # the state holds adversary cells


@pytest.mark.slow
def test_tool_exports_saved_model_and_webgl(tmp_path, mirror):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', TF_MULTINCA_MIRROR=str(mirror))
  p = subprocess.run([sys.executable, '-m', 'tools.export', '--pairing=lizard_red',
                      '--format=saved_model,webgl_json', f'--out_dir={tmp_path}'], cwd=REPO,
                     env=env, capture_output=True, text=True, timeout=300)
  assert p.returncode == 0, p.stderr
  assert (tmp_path / 'lizard_red' / 'saved_model' / 'saved_model.pb').is_file()
  assert (tmp_path / 'lizard_red' / 'webgl' / 'rule1.json').is_file()
  assert 'lizard_red saved_model:' in p.stdout
  unknown = subprocess.run([sys.executable, '-m', 'tools.export', '--pairing=no_such_pairing',
                            f'--out_dir={tmp_path}'], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=120)
  assert unknown.returncode == 2 and 'unknown pairing' in unknown.stderr
