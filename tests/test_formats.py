"""Tests of the published-weight readers (tf_multinca/pretrained/formats.py).

Exact values are checked against independent reads of the same bytes (raw storages of a `.pt`,
the TF.js graph constants shipped next to each adversarial checkpoint, hand-dequantised WebGL
bytes), so a reader bug cannot hide behind a shared helper.
"""

import base64
import json
import shlex
import struct
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from tf_multinca.model import WEIGHT_NAMES, WeightMismatchError, weight_shapes
from tf_multinca.pretrained import formats

_GH = 'raw.githubusercontent.com'
_LIZARD = '\U0001F98E'


def _one(mirror, pattern):
  hits = sorted(mirror.glob(pattern))
  assert len(hits) == 1, f'expected one {pattern} in the mirror, found {hits}'
  return hits[0]


def _pt_files(mirror):
  return sorted(mirror.glob(
      f'{_GH}/LetteraUnica/neural_cellular_automata/*/pytorch_ca/Pretrained_models/**/*.pt'))


@pytest.fixture(scope='module')
def adversarial_zip(mirror):
  return _one(mirror, f'{_GH}/google-research/self-organising-systems/*/'
                      'adversarial_reprogramming_ca/assets/growing_ca_adversarial_models.zip')


@pytest.fixture(scope='module')
def planarian_zip(mirror):
  return _one(mirror, f'{_GH}/google-research/self-organising-systems/*/assets/growing_ca/'
                      'planarian.zip')


def _webgl(mirror, name):
  return _one(mirror, f'{_GH}/distillpub/post--growing-ca/*/public/webgl_models8/{name}')


def _assert_canonical(weights):
  assert list(weights) == list(WEIGHT_NAMES)
  for name, shape in weight_shapes().items():
    assert weights[name].shape == shape, name
    assert weights[name].dtype == np.float32, name


# ------------------------------------------------------------------------------------------
# Hand-written torch pickles (no torch needed to build them).
# ------------------------------------------------------------------------------------------


def _g(module, name):  # GLOBAL
  return b'c' + f'{module}\n{name}\n'.encode()


def _s(text):  # BINUNICODE
  b = text.encode()
  return b'X' + struct.pack('<I', len(b)) + b


def _i(n):  # BININT
  return b'J' + struct.pack('<i', n)


def _t(*items):  # MARK ... TUPLE
  return b'(' + b''.join(items) + b't'


def _tensor_ops(key, numel, size, stride, offset=0):
  """Opcodes of `_rebuild_tensor_v2(<storage key>, offset, size, stride, False, OrderedDict())`."""
  pid = _t(_s('storage'), _g('torch', 'FloatStorage'), _s(key), _s('cuda:0'), _i(numel)) + b'Q'
  args = _t(pid, _i(offset), _t(*map(_i, size)), _t(*map(_i, stride)), b'\x89',
            _g('collections', 'OrderedDict') + b')R')
  return _g('torch._utils', '_rebuild_tensor_v2') + args + b'R'


def _write_pt(path, pkl, storages=None):
  """A torch-style zip archive: archive/data.pkl + archive/data/<key>."""
  with zipfile.ZipFile(path, 'w') as zf:
    zf.writestr('archive/data.pkl', pkl)
    for key, data in (storages or {}).items():
      zf.writestr(f'archive/data/{key}', data)
    zf.writestr('archive/version', '3\n')
  return path


def _state_dict_pt(path, tensors):
  """A `.pt` of `{key: float32 array in torch layout}`, contiguous storages."""
  entries, storages = [], {}
  for n, (key, array) in enumerate(tensors.items()):
    array = np.ascontiguousarray(array, '<f4')
    stride = [int(s // 4) for s in array.strides]
    entries.append(_s(key) + _tensor_ops(str(n), array.size, array.shape, stride))
    storages[str(n)] = array.tobytes()
  pkl = b'\x80\x02' + _g('collections', 'OrderedDict') + b')R(' + b''.join(entries) + b'u.'
  return _write_pt(path, pkl, storages)


def _torch_layout(weights):
  return {
      'layers.0.weight': weights['conv1/kernel'].transpose(3, 2, 0, 1),
      'layers.0.bias': weights['conv1/bias'],
      'layers.2.weight': weights['conv2/kernel'].transpose(3, 2, 0, 1),
      'layers.2.bias': weights['conv2/bias'],
  }


def _random_weights(seed=0):
  rng = np.random.default_rng(seed)
  return {n: rng.normal(size=s).astype(np.float32) for n, s in weight_shapes().items()}


# ------------------------------------------------------------------------------------------
# .pt
# ------------------------------------------------------------------------------------------


def test_every_published_pt_reads(mirror):
  files = _pt_files(mirror)
  assert len(files) >= 30
  for path in files:
    weights = formats.read_pt(path)
    _assert_canonical(weights)
    assert all(np.isfinite(w).all() for w in weights.values()), path


def test_pt_values_match_raw_storages(mirror):
  path = _one(mirror, f'{_GH}/LetteraUnica/neural_cellular_automata/*/pytorch_ca/'
                      'Pretrained_models/lizard/persist.pt')
  # Independent read: the storages are raw little-endian float32, told apart by their sizes.
  with zipfile.ZipFile(path) as zf:
    by_size = {zf.getinfo(n).file_size: zf.read(n) for n in zf.namelist() if '/data/' in n}
  bias = np.frombuffer(by_size[128 * 4], '<f4')
  w1 = np.frombuffer(by_size[128 * 48 * 4], '<f4').reshape(128, 48)  # torch [out, in]
  w2 = np.frombuffer(by_size[16 * 128 * 4], '<f4').reshape(16, 128)
  weights = formats.read_pt(path)
  np.testing.assert_array_equal(weights['conv1/bias'], bias)
  np.testing.assert_array_equal(weights['conv1/kernel'][0, 0], w1.T)
  np.testing.assert_array_equal(weights['conv2/kernel'][0, 0], w2.T)
  np.testing.assert_array_equal(weights['conv2/bias'], np.frombuffer(by_size[16 * 4], '<f4'))


def test_pt_crafted_round_trip_and_strides(tmp_path):
  want = _random_weights()
  torch_w = _torch_layout(want)
  path = _state_dict_pt(tmp_path / 'ok.pt', torch_w)
  got, fmt = formats.read_weights(path)
  assert fmt == 'pt'
  for name in WEIGHT_NAMES:
    np.testing.assert_array_equal(got[name], want[name])
  # A non-contiguous tensor (stored transposed) rebuilt from offset/size/stride.
  w = torch_w['layers.0.weight'][:, :, 0, 0]  # [128, 48]
  storage = np.concatenate([np.zeros(5, np.float32), w.T.ravel()])  # 5 floats of offset
  entries = [_s('layers.0.weight') + _tensor_ops('0', storage.size, (128, 48, 1, 1),
                                                 (1, 128, 1, 1), offset=5)]
  data = {'0': storage.astype('<f4').tobytes()}
  for n, key in enumerate(['layers.0.bias', 'layers.2.weight', 'layers.2.bias'], 1):
    a = np.ascontiguousarray(torch_w[key])
    entries.append(_s(key) + _tensor_ops(str(n), a.size, a.shape,
                                         [int(s // 4) for s in a.strides]))
    data[str(n)] = a.astype('<f4').tobytes()
  pkl = b'\x80\x02' + _g('collections', 'OrderedDict') + b')R(' + b''.join(entries) + b'u.'
  got = formats.read_pt(_write_pt(tmp_path / 'strided.pt', pkl, data))
  np.testing.assert_array_equal(got['conv1/kernel'], want['conv1/kernel'])


@pytest.mark.parametrize('kind', ['os.system', 'builtins.eval', 'posix.system (STACK_GLOBAL)'])
def test_pt_code_is_refused_and_never_runs(tmp_path, kind):
  marker = tmp_path / 'marker'
  shell = f'touch {shlex.quote(str(marker))}'
  if kind == 'os.system':
    pkl = b'\x80\x02' + _g('os', 'system') + b'(V' + shell.encode() + b'\ntR.'
  elif kind == 'builtins.eval':
    code = f'__import__("os").system({shell!r})'
    pkl = b'\x80\x02' + _g('builtins', 'eval') + b'(V' + code.encode() + b'\ntR.'
  else:
    cmd = shell.encode()
    pkl = (b'\x80\x04\x8c\x05posix\x8c\x06system\x93\x8c' + bytes([len(cmd)]) + cmd
           + b'\x85R.')
  path = _write_pt(tmp_path / 'evil.pt', pkl)
  with pytest.raises(formats.UnsafePickleError, match=kind.split()[0].replace('.', r'\.')):
    formats.read_pt(path)
  assert not marker.exists()
  # Also when hidden inside an otherwise valid state_dict entry.
  pkl = (b'\x80\x02' + _g('collections', 'OrderedDict') + b')R(' + _s('layers.0.bias')
         + _g('os', 'system') + b'(V' + shell.encode() + b'\ntRu.')
  with pytest.raises(formats.UnsafePickleError, match=r'os\.system'):
    formats.read_pt(_write_pt(tmp_path / 'evil2.pt', pkl))
  assert not marker.exists()


def test_pt_refuses_storage_construction_and_bad_views(tmp_path):
  # A REDUCE on an allowed storage type is not a state_dict operation.
  pkl = b'\x80\x02' + _g('torch', 'FloatStorage') + b')R.'
  with pytest.raises(formats.UnsafePickleError, match='FloatStorage'):
    formats.read_pt(_write_pt(tmp_path / 'a.pt', pkl))
  # A view reaching past its storage must not read foreign memory.
  pkl = (b'\x80\x02' + _g('collections', 'OrderedDict') + b')R(' + _s('layers.0.bias')
         + _tensor_ops('0', 16, (128,), (1,)) + b'u.')
  with pytest.raises(formats.WeightFormatError, match='storage 0'):
    formats.read_pt(_write_pt(tmp_path / 'b.pt', pkl, {'0': bytes(64)}))


def test_pt_wrong_shape_and_unexpected_keys(tmp_path):
  torch_w = _torch_layout(_random_weights())
  torch_w['layers.0.weight'] = torch_w['layers.0.weight'][:, :40]  # [128, 40, 1, 1]
  torch_w['layers.4.weight'] = np.zeros([16, 16, 1, 1], np.float32)
  with pytest.raises(WeightMismatchError) as e:
    formats.read_pt(_state_dict_pt(tmp_path / 'bad.pt', torch_w))
  assert 'conv1/kernel has shape (1, 1, 40, 128)' in str(e.value)
  assert e.value.unexpected == ['layers.4.weight']
  del torch_w['layers.2.bias']
  with pytest.raises(WeightMismatchError, match='missing: conv2/bias'):
    formats.read_pt(_state_dict_pt(tmp_path / 'bad2.pt', torch_w))


def test_pt_legacy_format_is_reported(tmp_path):
  path = tmp_path / 'legacy.pt'
  path.write_bytes(b'\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19.')  # legacy torch magic number
  with pytest.raises(formats.WeightFormatError, match='legacy'):
    formats.read_pt(path)


# ------------------------------------------------------------------------------------------
# TF checkpoints
# ------------------------------------------------------------------------------------------


def _tfjs_graph_weights(graph):
  """Kernel and bias constants of each Conv2D/BiasAdd of a TF.js graph model, in graph order."""
  nodes = {n['name']: n for n in graph['modelTopology']['node']}

  def const(name):
    node = nodes[name]
    while node['op'] == 'Identity':  # ReadVariableOp -> its frozen resource constant
      node = nodes[node['input'][0]]
    tensor = node['attr']['value']['tensor']
    assert tensor['dtype'] == 'DT_FLOAT'
    shape = [int(d['size']) for d in tensor['tensorShape']['dim']]
    return np.frombuffer(base64.b64decode(tensor['tensorContent']), '<f4').reshape(shape)

  convs = [n for n in graph['modelTopology']['node'] if n['op'] == 'Conv2D']
  biases = [n for n in graph['modelTopology']['node'] if n['op'] == 'BiasAdd']
  assert len(convs) == len(biases) == 2
  return {'conv1/kernel': const(convs[0]['input'][1]), 'conv1/bias': const(biases[0]['input'][1]),
          'conv2/kernel': const(convs[1]['input'][1]), 'conv2/bias': const(biases[1]['input'][1])}


def test_zip_layouts(adversarial_zip, planarian_zip):
  assert formats.list_zip_checkpoints(adversarial_zip) == [
      'no_tail_model', 'red_model', 'red_model_60perc']
  assert formats.list_zip_checkpoints(planarian_zip) == ['train_log/8000']


@pytest.mark.parametrize('name', ['red_model', 'red_model_60perc', 'no_tail_model'])
def test_adversarial_checkpoints_match_tfjs_graph(adversarial_zip, tmp_path, name):
  weights = formats.read_checkpoint_from_zip(adversarial_zip, name, tmp_path)
  _assert_canonical(weights)
  with zipfile.ZipFile(adversarial_zip) as zf:
    want = _tfjs_graph_weights(json.loads(zf.read(f'{name}.json')))
  for n in WEIGHT_NAMES:
    np.testing.assert_array_equal(weights[n], want[n], err_msg=n)
  # The extracted prefix, its directory and its .index also read, sniffed as a checkpoint.
  for path in (tmp_path / name, tmp_path / f'{name}.index'):
    got, fmt = formats.read_weights(path)
    assert fmt == 'tf_checkpoint'
    np.testing.assert_array_equal(got['conv2/kernel'], want['conv2/kernel'])


def test_planarian_checkpoint_matches_its_webgl_export(mirror, planarian_zip):
  # Same model in two formats: checks the `layer-N` names, dequantisation and band reorder.
  ckpt, fmt = formats.read_weights(planarian_zip)
  assert fmt == 'tf_checkpoint_zip'
  path = _webgl(mirror, 'ex3_planarian.json')
  webgl = formats.read_webgl_json(path)
  layers = json.loads(path.read_text())
  bounds = {'conv1/kernel': layers[0]['weight_scale'], 'conv1/bias': layers[0]['bias_scale'],
            'conv2/kernel': layers[1]['weight_scale'], 'conv2/bias': layers[1]['bias_scale']}
  for n in WEIGHT_NAMES:
    err = np.abs(webgl[n] - ckpt[n]).max()
    assert err <= bounds[n] / 510 * (1 + 1e-5), n


def _write_distill_checkpoint(prefix, weights, layer_names=('layer-0', 'layer-1')):
  """An object checkpoint laid out like the 2020 colab's `ca.save_weights`."""
  layers = {}
  for layer, conv in zip(layer_names, ('conv1', 'conv2')):
    layers[layer] = tf.train.Checkpoint(kernel=tf.Variable(weights[f'{conv}/kernel']),
                                        bias=tf.Variable(weights[f'{conv}/bias']))
  # An optimizer entry next to the model, as a training checkpoint has: ignored.
  ckpt = tf.train.Checkpoint(dmodel=tf.train.Checkpoint(**layers),
                             optimizer=tf.train.Checkpoint(iterations=tf.Variable(8000)))
  ckpt.write(str(prefix))


def test_distill_models_zip_layout(tmp_path):
  want = _random_weights(1)
  _write_distill_checkpoint(tmp_path / 'ckpt' / '08000', want)
  member = formats.distill_models_zip_prefix(1, 3, _LIZARD, run_index=0)
  assert member == 'models/use_sample_pool_1 damage_n_3 target_emoji_1F98E run_index_0/08000'
  zip_path = tmp_path / 'models.zip'
  with zipfile.ZipFile(zip_path, 'w') as zf:
    for f in (tmp_path / 'ckpt').iterdir():
      zf.write(f, member[:-len('08000')] + f.name)
  assert formats.list_zip_checkpoints(zip_path) == [member]
  got = formats.read_checkpoint_from_zip(zip_path, member, tmp_path / 'out')
  for n in WEIGHT_NAMES:
    np.testing.assert_array_equal(got[n], want[n])


def test_checkpoint_missing_and_misshaped(tmp_path):
  w = _random_weights()
  w['conv2/kernel'] = np.zeros([1, 1, 128, 12], np.float32)
  _write_distill_checkpoint(tmp_path / 'a', w, ('layer_with_weights-0', 'layer_with_weights-1'))
  with pytest.raises(WeightMismatchError, match=r'conv2/kernel has shape \(1, 1, 128, 12\)'):
    formats.read_tf_checkpoint(tmp_path / 'a')
  tf.train.Checkpoint(dmodel=tf.train.Checkpoint(**{'layer-0': tf.train.Checkpoint(
      kernel=tf.Variable(w['conv1/kernel']))})).write(str(tmp_path / 'b'))
  with pytest.raises(WeightMismatchError) as e:
    formats.read_tf_checkpoint(tmp_path / 'b')
  assert e.value.missing == ['conv1/bias', 'conv2/kernel', 'conv2/bias']


def test_zip_members_cannot_escape(tmp_path):
  zip_path = tmp_path / 'evil.zip'
  with zipfile.ZipFile(zip_path, 'w') as zf:
    zf.writestr('../escape.index', b'x')
    zf.writestr('../escape.data-00000-of-00001', b'x')
    zf.writestr('ok.index', b'x')
    zf.writestr('ok.data-00000-of-00001/../../../escape2', b'x')
  out = tmp_path / 'out'
  for prefix in ('../escape', '/abs/escape', 'ok'):
    with pytest.raises(formats.WeightFormatError):
      formats.read_checkpoint_from_zip(zip_path, prefix, out)
  assert not (tmp_path / 'escape.index').exists() and not (tmp_path / 'escape2').exists()
  with pytest.raises(formats.WeightFormatError, match='no checkpoint'):
    formats.read_checkpoint_from_zip(zip_path, 'absent', out)


# ------------------------------------------------------------------------------------------
# WebGL JSON
# ------------------------------------------------------------------------------------------


def test_webgl_dequantisation_and_band_order(mirror):
  path = _webgl(mirror, f'ex2_{_LIZARD}.json')
  layers = json.loads(path.read_text())
  weights = formats.read_webgl_json(path)
  _assert_canonical(weights)
  raw = np.frombuffer(base64.b64decode(layers[0]['data_b64']), np.uint8).reshape(49, 128)
  c, k, out = 3, 1, 5
  byte = int(raw[k * 16 + c, out])  # file rows are bands: all identity, all Kx, all Ky
  want = np.float32((byte / 255 - 0.5) * layers[0]['weight_scale'])
  assert weights['conv1/kernel'][0, 0, 3 * c + k, out] == want
  np.testing.assert_array_equal(
      weights['conv1/kernel'][0, 0, 3 * c + k],
      ((raw[k * 16 + c] / 255 - 0.5) * layers[0]['weight_scale']).astype(np.float32))
  raw2 = np.frombuffer(base64.b64decode(layers[1]['data_b64']), np.uint8).reshape(129, 16)
  assert weights['conv2/bias'][7] == np.float32(
      (int(raw2[128, 7]) / 255 - 0.5) * layers[1]['bias_scale'])
  assert weights['conv2/kernel'][0, 0, 100, 7] == np.float32(
      (int(raw2[100, 7]) / 255 - 0.5) * layers[1]['weight_scale'])


def test_webgl_wrong_shape_and_malformed(mirror, tmp_path):
  layers = json.loads(_webgl(mirror, f'ex2_{_LIZARD}.json').read_text())

  def write(ls):
    path = tmp_path / 'm.json'
    path.write_text(json.dumps(ls))
    return path

  narrow = [dict(layers[0], in_ch=32, data_b64=base64.b64encode(bytes(33 * 128)).decode()),
            layers[1]]
  with pytest.raises(WeightMismatchError, match=r'conv1/kernel has shape \(1, 1, 32, 128\)'):
    formats.read_webgl_json(write(narrow))
  with pytest.raises(formats.WeightFormatError, match='only "uint8"'):
    formats.read_webgl_json(write([dict(layers[0], type='float32'), layers[1]]))
  short = base64.b64encode(base64.b64decode(layers[1]['data_b64'])[:-1]).decode()
  with pytest.raises(formats.WeightFormatError, match='layer 1: data_b64 holds 2063 bytes'):
    formats.read_webgl_json(write([layers[0], dict(layers[1], data_b64=short)]))
  with pytest.raises(formats.WeightFormatError, match='lacks bias_scale'):
    formats.read_webgl_json(write([{k: v for k, v in layers[0].items() if k != 'bias_scale'},
                                   layers[1]]))
  with pytest.raises(formats.WeightFormatError, match='two layers'):
    formats.read_webgl_json(write(layers[:1]))
  with pytest.raises(formats.WeightFormatError, match='TF.js graph model'):
    formats.read_webgl_json(write({'format': 'graph-model', 'modelTopology': {}}))


def test_webgl_write_read_round_trip(tmp_path):
  want = _random_weights(2)
  want['conv2/bias'][:] = 0  # an all-zero tensor stays ~0
  path = tmp_path / 'w.json'
  formats.write_webgl_json(want, path)
  layers = json.loads(path.read_text())
  assert [(l['in_ch'], l['out_ch'], l['type']) for l in layers] == [(48, 128, 'uint8'),
                                                                     (128, 16, 'uint8')]
  got, fmt = formats.read_weights(path)
  assert fmt == 'webgl_json'
  scales = {'conv1/kernel': layers[0]['weight_scale'], 'conv1/bias': layers[0]['bias_scale'],
            'conv2/kernel': layers[1]['weight_scale'], 'conv2/bias': layers[1]['bias_scale']}
  for n in WEIGHT_NAMES:
    assert np.abs(got[n] - want[n]).max() <= scales[n] / 255 / 2 * (1 + 1e-5) + 1e-7, n
  # Writing the dequantised weights again reproduces the file's bytes (but for the all-zero
  # bias, whose scale follows its tiny dequantised values).
  formats.write_webgl_json(got, tmp_path / 'w2.json')
  again = json.loads((tmp_path / 'w2.json').read_text())
  assert again[0]['data_b64'] == layers[0]['data_b64']
  assert (base64.b64decode(again[1]['data_b64'])[:128 * 16]
          == base64.b64decode(layers[1]['data_b64'])[:128 * 16])


# ------------------------------------------------------------------------------------------
# Dispatch
# ------------------------------------------------------------------------------------------


def test_read_weights_dispatch_errors(tmp_path, adversarial_zip):
  with pytest.raises(FileNotFoundError, match='no weight file'):
    formats.read_weights(tmp_path / 'absent.pt')
  other = tmp_path / 'weights.txt'
  other.write_text('hello')
  with pytest.raises(ValueError, match='expected a .pt, a checkpoint prefix or a .json'):
    formats.read_weights(other)
  with pytest.raises(ValueError, match='unknown weight format'):
    formats.read_weights(other, fmt='onnx')
  with pytest.raises(ValueError, match='holds 3 checkpoints'):
    formats.read_weights(adversarial_zip)
  formats.read_checkpoint_from_zip(adversarial_zip, 'red_model', tmp_path / 'ck')
  got, fmt = formats.read_weights(tmp_path / 'ck')  # a directory holding one checkpoint
  assert fmt == 'tf_checkpoint'
  _assert_canonical(got)
