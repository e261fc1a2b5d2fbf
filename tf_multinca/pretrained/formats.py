"""Readers for the published weight files (SPEC section 4), without PyTorch.

Every reader returns the canonical weight dict of float32 NumPy arrays::

    'conv1/kernel' [1, 1, 48, 128]    'conv1/bias' [128]
    'conv2/kernel' [1, 1, 128, 16]    'conv2/bias' [16]

checked by `tf_multinca.model.check_weights`, so a file that does not fit the model raises
`WeightMismatchError` naming every missing, unexpected and mis-shaped tensor.

Formats:
  'pt': the paper's PyTorch zip archives, read by a restricted unpickler that accepts only what a
    float32 state_dict needs and runs nothing else (`UnsafePickleError`).
  'tf_checkpoint': Distill object-based TF checkpoints (`<prefix>.index` + `<prefix>.data-*`),
    also read out of a zip (`read_checkpoint_from_zip`, `list_zip_checkpoints`).
  'webgl_json': the Distill article's uint8-quantised WebGL models (lossy).
"""

import base64
import binascii
import collections
import io
import json
import math
import os
import pathlib
import pickle
import re
import reprlib
import tempfile
import zipfile

import numpy as np
import tensorflow as tf

from tf_multinca import errors
from tf_multinca import fileio
from tf_multinca import layout
from tf_multinca import model as model_lib

FORMATS = ('pt', 'tf_checkpoint', 'tf_checkpoint_zip', 'webgl_json')


class UnsafePickleError(errors.Error, ValueError):
  """A pickle asked for something a float32 state_dict does not need; nothing was run."""


class WeightFormatError(errors.Error, ValueError):
  """A weight file that is malformed or in a layout this module does not read."""


def _checked(weights, source):
  """Checks names and shapes; returns the dict in `WEIGHT_NAMES` order."""
  model_lib.check_weights(weights, source=source)
  return {name: weights[name] for name in model_lib.WEIGHT_NAMES}


# --------------------------------------------------------------------------------------------
# PyTorch zip archives (.pt)
# --------------------------------------------------------------------------------------------

# state_dict key -> (canonical name, whether it is a conv kernel [out, in, 1, 1] to transpose).
_PT_NAMES = {
    'layers.0.weight': ('conv1/kernel', True),
    'layers.0.bias': ('conv1/bias', False),
    'layers.2.weight': ('conv2/kernel', True),
    'layers.2.bias': ('conv2/bias', False),
}

# A rule is 8336 float32 (33 KB), its pickle about 1 KB: every member, opcode argument and file
# is capped well above what a rule can need and far below what would hurt (zip bombs, huge
# BINBYTES, deep JSON).
_MAX_MEMBER_BYTES = 1 << 20  # one storage (data/N) or one checkpoint member
_MAX_PICKLE_BYTES = 1 << 20  # <root>/data.pkl
_MAX_SMALL_MEMBER_BYTES = 64  # <root>/byteorder, <root>/version
_MAX_JSON_BYTES = 4 << 20  # a WebGL model of one rule is ~12 KB
_MAX_WEBGL_SCALE = 1e6  # |scale|: rule weights are O(1); float32 overflows past ~3e38


def describe(obj, limit=80):
  """A short, bounded description of an untrusted object for error messages: its type and a
  truncated repr (depth and length limited, so a crafted structure cannot explode it)."""
  r = reprlib.Repr()
  r.maxlevel, r.maxstring, r.maxother, r.maxlong = 2, 40, 40, 40
  r.maxtuple = r.maxlist = r.maxdict = r.maxset = r.maxfrozenset = r.maxdeque = 4
  try:
    text = r.repr(obj)
  except Exception:  # pylint: disable=broad-except  (an object whose repr itself fails)
    text = '?'
  if len(text) > limit:
    text = text[:limit - 3] + '...'
  return f'{type(obj).__name__} {text}'


class _StorageType:
  """Stand-in for `torch.FloatStorage` & co.: only a tag inside a persistent id."""

  __slots__ = ('name', 'dtype')

  def __init__(self, name, dtype):
    self.name, self.dtype = name, np.dtype(dtype)

  def __call__(self, *args, **kwargs):
    # A REDUCE on a storage type would construct one in torch; here it is never legitimate.
    raise UnsafePickleError(f'refused call of {self.name}: storage types may only appear in a '
                            'persistent id')

  def __repr__(self):
    return f'<storage type {self.name}>'


class _Tensor:
  """A rebuilt tensor. `__slots__` (no `__dict__`): a BUILD opcode cannot attach state to it."""

  __slots__ = ('array',)

  def __init__(self, array):
    self.array = array


class _Storage:
  """Bytes of one `<root>/data/<key>` member, viewed as its storage type's dtype."""

  __slots__ = ('key', 'array')

  def __init__(self, key, array):
    self.key, self.array = key, array


def _as_int_tuple(value, what):
  if not isinstance(value, tuple) or not all(
      isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value):
    raise UnsafePickleError(f'tensor {what} must be a tuple of non-negative ints, got '
                            f'{describe(value)}')
  return value


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
  """`torch._utils._rebuild_tensor_v2` in NumPy: a strided view of a storage, copied.

  Returns:
    `_Tensor` holding an array of shape `size`.
  """
  del requires_grad, backward_hooks, metadata  # irrelevant to the values
  if not isinstance(storage, _Storage):
    raise UnsafePickleError(f'_rebuild_tensor_v2 needs a storage, got {type(storage).__name__}')
  if not isinstance(storage_offset, int) or isinstance(storage_offset, bool) or storage_offset < 0:
    raise UnsafePickleError(f'bad storage offset {describe(storage_offset)}')
  size, stride = _as_int_tuple(size, 'size'), _as_int_tuple(stride, 'stride')
  if len(size) != len(stride):
    raise UnsafePickleError(f'tensor size {size} and stride {stride} differ in rank')
  data = storage.array
  if math.prod(size) > _MAX_MEMBER_BYTES // data.itemsize:  # stride-0 views could be huge
    raise WeightFormatError(f'tensor of size {size} is larger than a rule could need')
  if 0 in size:
    return _Tensor(np.zeros(size, data.dtype))
  # as_strided reads raw memory: the view's last element must lie inside the storage.
  last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
  if last >= data.size:
    raise WeightFormatError(
        f'tensor (offset {storage_offset}, size {size}, stride {stride}) reaches element {last} '
        f'of storage {storage.key}, which holds {data.size}')
  base = data[storage_offset:]
  view = np.lib.stride_tricks.as_strided(
      base, shape=size, strides=tuple(s * data.itemsize for s in stride), writeable=False)
  return _Tensor(np.array(view, dtype=data.dtype.newbyteorder('=')))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
  """`torch._utils._rebuild_parameter`: an nn.Parameter is just its tensor here."""
  del requires_grad, backward_hooks
  if not isinstance(data, _Tensor):
    raise UnsafePickleError(f'_rebuild_parameter needs a tensor, got {type(data).__name__}')
  return data


class _StateDictUnpickler(pickle.Unpickler):
  """Unpickles a float32 state_dict from a torch zip archive and refuses everything else.

  Only the globals in `_allowed` resolve; storages come from the archive's `data/` members.
  """

  def __init__(self, file, zf, root, byteorder):
    super().__init__(file)
    self._zf, self._root = zf, root
    self._storages = {}
    float_type = byteorder + 'f4'
    self._allowed = {
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor_v2,
        ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
        ('torch', 'FloatStorage'): _StorageType('torch.FloatStorage', float_type),
        ('torch.cuda', 'FloatStorage'): _StorageType('torch.cuda.FloatStorage', float_type),
    }

  def find_class(self, module, name):
    try:
      return self._allowed[(module, name)]
    except KeyError:
      allowed = ', '.join(f'{m}.{n}' for m, n in self._allowed)
      raise UnsafePickleError(
          f'refused global {module}.{name}: a float32 state_dict only needs {allowed}') from None

  def persistent_load(self, pid):
    # torch's zip format: ('storage', storage_type, key, location, numel).
    if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == 'storage'):
      raise UnsafePickleError(f'refused persistent id {describe(pid)}: expected a storage '
                              'record')
    _, storage_type, key, location, numel = pid
    del location  # 'cuda:0' in the published files; NumPy only needs the bytes
    if not isinstance(storage_type, _StorageType):
      raise UnsafePickleError(f'refused storage type {describe(storage_type)}')
    if not isinstance(key, str) or not re.fullmatch(r'[0-9A-Za-z_]+', key):
      raise UnsafePickleError(f'refused storage key {describe(key)}')
    if not isinstance(numel, int) or isinstance(numel, bool) or numel < 0:
      raise UnsafePickleError(f'refused storage size {describe(numel)}')
    if key not in self._storages:
      member = f'{self._root}/data/{key}'
      data = _read_member(self._zf, member)
      nbytes = numel * storage_type.dtype.itemsize
      if len(data) < nbytes:
        raise WeightFormatError(f'storage {member} holds {len(data)} bytes, its record says '
                                f'{numel} x {storage_type.name} ({nbytes} bytes)')
      array = np.frombuffer(data, storage_type.dtype, count=numel)
      self._storages[key] = _Storage(key, array)
    return self._storages[key]


def _read_member(zf, member, limit=_MAX_MEMBER_BYTES):
  """The bytes of one zip member, refused past `limit` (from its header, and while reading)."""
  try:
    info = zf.getinfo(member)
  except KeyError:
    raise WeightFormatError(f'archive member {member} is missing') from None
  if info.file_size > limit:
    raise WeightFormatError(f'archive member {member} is {info.file_size} bytes, more than a '
                            f'rule could need ({limit})')
  with zf.open(info) as f:
    data = f.read(limit + 1)
  if len(data) > limit:
    raise WeightFormatError(f'archive member {member} holds more than {limit} bytes')
  return data


def read_pt(path):
  """Reads one of the paper's `.pt` state_dicts without torch and without running its pickle.

  Args:
    path: a PyTorch zip archive (`<root>/data.pkl` + `<root>/data/<n>`), state_dict keys
      `layers.0.weight [128,48,1,1]`, `layers.0.bias [128]`, `layers.2.weight [16,128,1,1]`,
      `layers.2.bias [16]`.

  Returns:
    Canonical weight dict; kernels transposed `[out, in, 1, 1] -> [1, 1, in, out]`.

  Raises:
    UnsafePickleError: the pickle names a global outside the state_dict allowlist.
    WeightFormatError: not a zip archive (legacy torch format) or a malformed archive.
    WeightMismatchError: missing, unexpected or mis-shaped tensors.
  """
  path = os.fspath(path)
  if not zipfile.is_zipfile(path):
    raise WeightFormatError(
        f'{path} is not a zip archive: the legacy (pre-1.6, non-zip) PyTorch format is not '
        'supported; re-save it with torch.save(state_dict, path) from torch >= 1.6')
  with zipfile.ZipFile(path) as zf:
    pkls = [n for n in zf.namelist() if n.count('/') == 1 and n.endswith('/data.pkl')]
    if len(pkls) != 1:
      raise WeightFormatError(f'{path}: expected one <root>/data.pkl in the archive, found '
                              f'{pkls or "none"}')
    root = pkls[0][:-len('/data.pkl')]
    byteorder = '<'
    if f'{root}/byteorder' in zf.namelist():
      byteorder = {'little': '<', 'big': '>'}.get(
          _read_member(zf, f'{root}/byteorder', _MAX_SMALL_MEMBER_BYTES).decode(
              'ascii', 'replace').strip())
      if byteorder is None:
        raise WeightFormatError(f'{path}: unknown byteorder record')
    # The whole pickle is read (capped) first: no opcode can ask for more bytes than it has.
    pickled = io.BytesIO(_read_member(zf, pkls[0], _MAX_PICKLE_BYTES))
    try:
      obj = _StateDictUnpickler(pickled, zf, root, byteorder).load()
      if not isinstance(obj, dict):
        raise WeightFormatError(f'{path}: expected a state_dict (a mapping), got '
                                f'{type(obj).__name__}')
      # dict.items, not obj.items: a BUILD may have set an attribute called `items`.
      items = list(dict.items(obj))
    except (UnsafePickleError, WeightFormatError):
      raise
    except Exception as e:  # truncated, garbled or crafted pickle: report it as such
      raise WeightFormatError(f'{path}: malformed data.pkl ({type(e).__name__}: '
                              f'{str(e)[:120]})') from None
  weights = {}
  for key, value in items:
    if not isinstance(key, str) or len(key) > 200:
      raise WeightFormatError(f'{path}: state_dict key {describe(key)} is not a tensor name')
    if not isinstance(value, _Tensor):
      raise WeightFormatError(f'{path}: state_dict entry {key!r} is not a tensor')
    name, is_kernel = _PT_NAMES.get(key, (key, False))  # unknown keys stay, as "unexpected"
    array = value.array
    if array.dtype != np.float32:
      raise WeightFormatError(f'{path}: {key} is {array.dtype}, expected float32')
    if is_kernel and array.ndim == 4:
      array = array.transpose(2, 3, 1, 0)  # torch [out, in, kh, kw] -> Keras [kh, kw, in, out]
    weights[name] = np.ascontiguousarray(array)
  return _checked(weights, path)


# --------------------------------------------------------------------------------------------
# TF object checkpoints
# --------------------------------------------------------------------------------------------

# Sequential sub-models are saved as `layer_with_weights-N` (TF >= 2.2) or `layer-N` (the 2020
# Distill colab, e.g. planarian.zip).
_CKPT_VAR = re.compile(r'dmodel/(layer_with_weights|layer)-(\d+)/(kernel|bias)/'
                       r'\.ATTRIBUTES/VARIABLE_VALUE')
_CKPT_NAMES = {('0', 'kernel'): 'conv1/kernel', ('0', 'bias'): 'conv1/bias',
               ('1', 'kernel'): 'conv2/kernel', ('1', 'bias'): 'conv2/bias'}


def read_tf_checkpoint(prefix, source=None):
  """Reads a Distill object checkpoint with `tf.train.load_checkpoint`.

  Args:
    prefix: checkpoint prefix (`<prefix>.index` exists) or a directory holding one.
    source: how errors name the checkpoint; defaults to `prefix`.

  Returns:
    Canonical weight dict from `dmodel/layer_with_weights-{0,1}/{kernel,bias}` (or `layer-N`);
    optimizer slots, save counters and other non-model entries are ignored.

  Raises:
    WeightFormatError: unreadable checkpoint or non-float32 variables.
    WeightMismatchError: missing, unexpected or mis-shaped tensors.
  """
  prefix = os.fspath(prefix)
  source = source or prefix
  try:
    reader = tf.train.load_checkpoint(prefix)
  except (tf.errors.OpError, ValueError) as e:
    raise WeightFormatError(f'cannot read TF checkpoint {source}: {e}') from e
  by_scheme = collections.defaultdict(dict)
  other_model_vars = []
  for var in reader.get_variable_to_shape_map():
    m = _CKPT_VAR.fullmatch(var)
    if m:
      by_scheme[m.group(1)][var] = _CKPT_NAMES.get((m.group(2), m.group(3)), var)
    elif var.startswith('dmodel/') and var.endswith('/.ATTRIBUTES/VARIABLE_VALUE'):
      other_model_vars.append(var)  # a model tensor we do not know: "unexpected"
  # Use the naming scheme that holds the first layer's kernel; anything else is unexpected.
  schemes = sorted(by_scheme, key=lambda s: 'conv1/kernel' not in by_scheme[s].values())
  names = dict(by_scheme[schemes[0]]) if schemes else {}
  for s in schemes[1:]:
    names.update({v: v for v in by_scheme[s]})
  names.update({v: v for v in other_model_vars})
  weights = {}
  for var, name in names.items():
    value = reader.get_tensor(var)
    if value.dtype != np.float32:
      raise WeightFormatError(f'{source}: {var} is {value.dtype}, expected float32')
    weights[name] = np.asarray(value)
  return _checked(weights, source)


def _checked_member_name(name):
  """Rejects zip member names that could escape the extraction directory."""
  if (not name or name.startswith(('/', '\\')) or '\\' in name or re.match(r'[A-Za-z]:', name)
      or '..' in name.split('/') or '\0' in name):
    raise WeightFormatError(f'refused unsafe zip member name {name!r}')
  return name


def list_zip_checkpoints(zip_path):
  """Checkpoint prefixes inside a zip: every member path whose `.index` is present.

  E.g. `['no_tail_model', 'red_model', 'red_model_60perc']` for
  growing_ca_adversarial_models.zip, `['train_log/8000']` for planarian.zip and
  `models/use_sample_pool_%d damage_n_%d target_emoji_%X run_index_%d/08000` for Distill's
  models.zip (see `distill_models_zip_prefix`).
  """
  with zipfile.ZipFile(zip_path) as zf:
    return sorted(n[:-len('.index')] for n in zf.namelist()
                  if n.endswith('.index') and not n.endswith('/.index'))


def distill_models_zip_prefix(use_sample_pool, damage_n, emoji, run_index=0, step=8000):
  """Member prefix of one run in Distill's `models.zip`.

  Args:
    use_sample_pool: 0 or 1 (experiment 1 = 0, 2 and 3 = 1).
    damage_n: damaged samples per batch (experiment 3 = 3, else 0).
    emoji: the target emoji, a one-character string or its code point.
    run_index: run number.
    step: training step of the checkpoint.
  """
  code = ord(emoji) if isinstance(emoji, str) else int(emoji)
  return (f'models/use_sample_pool_{int(use_sample_pool)} damage_n_{int(damage_n)} '
          f'target_emoji_{code:X} run_index_{int(run_index)}/{int(step):05d}')


_SHARD = re.compile(r'\.data-(\d{5})-of-(\d{5})')


def read_checkpoint_from_zip(zip_path, member_prefix, extract_dir):
  """Extracts one checkpoint (`.index` and `.data-*` shards) from a zip and reads it.

  Only those members are extracted; names that are absolute or contain `..` are refused.

  Args:
    zip_path: the zip archive.
    member_prefix: checkpoint prefix inside it (see `list_zip_checkpoints`).
    extract_dir: directory to extract into (created if needed).

  Returns:
    Canonical weight dict (see `read_tf_checkpoint`).
  """
  zip_path = os.fspath(zip_path)
  _checked_member_name(member_prefix)
  source = f'{zip_path}:{member_prefix}'
  out_root = pathlib.Path(extract_dir).resolve()
  with zipfile.ZipFile(zip_path) as zf:
    names = zf.namelist()
    if member_prefix + '.index' not in names:
      raise WeightFormatError(f'{zip_path} has no checkpoint {member_prefix!r}; it holds '
                              f'{list_zip_checkpoints(zip_path) or "none"}')
    shards = sorted(n for n in names if n.startswith(member_prefix + '.data-'))
    matches = [_SHARD.fullmatch(n[len(member_prefix):]) for n in shards]
    if not all(matches):
      raise WeightFormatError(f'{source}: unexpected data members {shards}')
    counts = {m.group(2) for m in matches}
    if not shards or len(counts) != 1 or len(shards) != int(counts.pop()):
      raise WeightFormatError(f'{source}: incomplete or inconsistent data shards '
                              f'{shards or "(none)"}')
    for name in [member_prefix + '.index'] + shards:
      dest = (out_root / _checked_member_name(name)).resolve()
      if out_root not in dest.parents:  # belt and braces after the name check
        raise WeightFormatError(f'refused zip member {name!r}: it extracts outside {out_root}')
      dest.parent.mkdir(parents=True, exist_ok=True)
      dest.write_bytes(_read_member(zf, name))
  return read_tf_checkpoint(str(out_root / member_prefix), source=source)


# --------------------------------------------------------------------------------------------
# Distill WebGL uint8 JSON
# --------------------------------------------------------------------------------------------

_WEBGL_KEYS = ('data_b64', 'in_ch', 'out_ch', 'weight_scale', 'bias_scale', 'type')


def _band_to_channel_major(channel_n):
  """Permutation `p` with `canonical_rows = band_rows[p]`: row `3*c + k` <- row `k*n + c`."""
  n, kn = channel_n, layout.PERCEPTION_KERNELS
  return np.array([k * n + c for c in range(n) for k in range(kn)])


def _parse_webgl_layer(layer, i, path):
  """One layer -> (kernel `[in_ch, out_ch]`, bias `[out_ch]`) float32, dequantised."""
  where = f'{path}: layer {i}'
  if not isinstance(layer, dict):
    raise WeightFormatError(f'{where} is not an object')
  missing = [k for k in _WEBGL_KEYS if k not in layer]
  if missing:
    raise WeightFormatError(f'{where} lacks {", ".join(missing)}')
  if layer['type'] != 'uint8':
    raise WeightFormatError(f'{where} has type {describe(layer["type"])}; only "uint8" is '
                            'supported')
  in_ch, out_ch = layer['in_ch'], layer['out_ch']
  for key, v in (('in_ch', in_ch), ('out_ch', out_ch)):
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
      raise WeightFormatError(f'{where}: {key} must be a positive int, got {describe(v)}')
  scales = []
  for key in ('weight_scale', 'bias_scale'):
    v = layer[key]
    if (not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)
        or abs(v) > _MAX_WEBGL_SCALE):
      raise WeightFormatError(f'{where}: {key} must be a finite number of magnitude at most '
                              f'{_MAX_WEBGL_SCALE:g}, got {describe(v)}')
    scales.append(float(v))
  try:
    data = base64.b64decode(layer['data_b64'], validate=True)
  except (binascii.Error, TypeError, ValueError) as e:
    raise WeightFormatError(f'{where}: data_b64 is not valid base64 ({e})') from e
  if len(data) != (in_ch + 1) * out_ch:
    raise WeightFormatError(f'{where}: data_b64 holds {len(data)} bytes, expected '
                            f'(in_ch + 1) * out_ch = {(in_ch + 1) * out_ch}')
  q = np.frombuffer(data, np.uint8).reshape(in_ch + 1, out_ch).astype(np.float64)
  kernel = (q[:-1] / 255.0 - 0.5) * scales[0]
  bias = (q[-1] / 255.0 - 0.5) * scales[1]
  return kernel.astype(np.float32), bias.astype(np.float32)


def read_webgl_json(path):
  """Reads a Distill WebGL model (`webgl_models8/*.json`), dequantising its uint8 values.

  Each of the two layers decodes to `[in_ch + 1, out_ch]` bytes (last row the bias);
  value = `(byte / 255 - 0.5) * scale`. The first layer's input rows are in band order
  `k * 16 + c` and are reordered to the perception order `3 * c + k`.

  Returns:
    Canonical weight dict (values are quantised: within `scale / 510` of the trained ones).

  Raises:
    WeightFormatError: not a two-layer uint8 WebGL model.
    WeightMismatchError: layer sizes that do not fit the model.
  """
  path = os.fspath(path)
  size = os.path.getsize(path)
  if size > _MAX_JSON_BYTES:
    raise WeightFormatError(f'{path} is {size} bytes; a WebGL model of one rule is ~12 KB '
                            f'(at most {_MAX_JSON_BYTES} read)')
  try:
    with open(path, encoding='utf-8') as f:
      layers = json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise WeightFormatError(f'{path} is not valid JSON ({e})') from e
  except RecursionError:
    raise WeightFormatError(f'{path} is nested too deeply to be a WebGL model') from None
  if isinstance(layers, dict) and 'modelTopology' in layers:
    raise WeightFormatError(f'{path} is a TF.js graph model, not a Distill WebGL model; read '
                            'the TF checkpoint saved next to it instead')
  if not isinstance(layers, list) or len(layers) != 2:
    raise WeightFormatError(f'{path}: expected a list of two layers, got '
                            f'{type(layers).__name__}'
                            + (f' of length {len(layers)}' if isinstance(layers, list) else ''))
  (k1, b1), (k2, b2) = (_parse_webgl_layer(l, i, path) for i, l in enumerate(layers))
  if k1.shape[0] % layout.PERCEPTION_KERNELS == 0:
    k1 = k1[_band_to_channel_major(k1.shape[0] // layout.PERCEPTION_KERNELS)]
  # else: the shape is wrong anyway and check_weights names it.
  weights = {'conv1/kernel': k1[None, None], 'conv1/bias': b1,
             'conv2/kernel': k2[None, None], 'conv2/bias': b2}
  return _checked(weights, path)


_ZERO_SCALE = 1e-30  # a float32 normal, so a float32 reader (WebGL) keeps it


def _quantise(values, scale):
  return np.clip(np.round((values / scale + 0.5) * 255.0), 0, 255).astype(np.uint8)


def write_webgl_json(weights, path):
  """Writes a canonical weight dict as a Distill WebGL uint8 model (the inverse of the reader),
  atomically: the one WebGL writer.

  Lossy: each tensor is quantised to 256 levels with `scale = 2 * max|w|` (so `w / scale + 0.5`
  lies in [0, 1]); reading the file back gives every value within `scale / 255 / 2` of the
  original. The first layer's rows are written in the file's band order `k * 16 + c`.

  Raises:
    WeightMismatchError: `weights` does not fit the model.
  """
  path = os.fspath(path)
  model_lib.check_weights(weights, source='the weights to write')
  k1 = np.asarray(weights['conv1/kernel'], np.float64)[0, 0]  # [48, 128], rows 3c + k
  perm = _band_to_channel_major(k1.shape[0] // layout.PERCEPTION_KERNELS)
  band = np.empty_like(k1)
  band[perm] = k1  # inverse of the reader's gather
  layers = []
  for kernel, bias in ((band, weights['conv1/bias']),
                       (np.asarray(weights['conv2/kernel'], np.float64)[0, 0],
                        weights['conv2/bias'])):
    bias = np.asarray(bias, np.float64)
    # An all-zero tensor (an untrained last layer) fits any scale; a tiny one keeps it ~0.
    w_scale = float(2 * np.max(np.abs(kernel))) or _ZERO_SCALE
    b_scale = float(2 * np.max(np.abs(bias))) or _ZERO_SCALE
    data = np.concatenate([_quantise(kernel, w_scale), _quantise(bias, b_scale)[None]])
    layers.append({
        'data_b64': base64.b64encode(data.tobytes()).decode('ascii'),
        'in_ch': int(kernel.shape[0]), 'out_ch': int(kernel.shape[1]),
        'weight_scale': w_scale, 'bias_scale': b_scale, 'type': 'uint8',
    })
  return fileio.write_text(path, json.dumps(layers))


# --------------------------------------------------------------------------------------------
# Dispatch
# --------------------------------------------------------------------------------------------


def _checkpoint_in_dir(directory):
  """The checkpoint prefix in a directory: its `checkpoint` file's latest, or its one `.index`."""
  latest = tf.train.latest_checkpoint(directory)
  if latest:
    return latest
  prefixes = sorted(p[:-len('.index')] for p in os.listdir(directory) if p.endswith('.index'))
  if len(prefixes) == 1:
    return os.path.join(directory, prefixes[0])
  if prefixes:
    raise WeightFormatError(f'{directory} holds several checkpoints ({", ".join(prefixes)}); '
                            'pass one prefix')
  return None


def read_weights(path, fmt=None):
  """Reads any published weight file into the canonical dict.

  Args:
    path: a `.pt`, a WebGL `.json`, a checkpoint prefix (`<path>.index` exists), a
      `<prefix>.index`, a directory holding a checkpoint, or a zip holding exactly one.
    fmt: one of `FORMATS` to skip sniffing.

  Returns:
    `(weights, fmt)`.

  Raises:
    FileNotFoundError: nothing at `path`.
    ValueError: an unknown `fmt` or unrecognised file (`WeightFormatError`), an unsafe pickle
      (`UnsafePickleError`) or tensors that do not fit (`WeightMismatchError`).
  """
  path = os.fspath(path)
  if fmt is None:
    fmt, path = _sniff(path)
  elif fmt not in FORMATS:
    raise ValueError(f'unknown weight format {fmt!r}; expected one of {FORMATS}')
  if fmt == 'pt':
    return read_pt(path), fmt
  if fmt == 'webgl_json':
    return read_webgl_json(path), fmt
  if fmt == 'tf_checkpoint':
    if os.path.isdir(path):
      path = _checkpoint_in_dir(path) or path
    return read_tf_checkpoint(path), fmt
  prefixes = list_zip_checkpoints(path)  # 'tf_checkpoint_zip'
  if len(prefixes) != 1:
    raise WeightFormatError(f'{path} holds {len(prefixes)} checkpoints ({prefixes}); use '
                            'read_checkpoint_from_zip with one of them')
  with tempfile.TemporaryDirectory() as tmp:
    return read_checkpoint_from_zip(path, prefixes[0], tmp), fmt


def _sniff(path):
  """(format, path to read) for `path`, by extension then content."""
  unrecognised = (f'unrecognised weight file {path}: expected a .pt, a checkpoint prefix or a '
                  '.json')
  if os.path.isfile(path + '.index'):
    return 'tf_checkpoint', path
  if not os.path.exists(path):
    raise FileNotFoundError(f'no weight file or checkpoint prefix at {path}')
  if os.path.isdir(path):
    if _checkpoint_in_dir(path) is None:
      raise WeightFormatError(f'{path} is a directory without a TF checkpoint; ' + unrecognised)
    return 'tf_checkpoint', path
  ext = os.path.splitext(path)[1].lower()
  if ext in ('.pt', '.pth'):
    return 'pt', path
  if ext == '.json':
    return 'webgl_json', path
  if ext == '.index':
    return 'tf_checkpoint', path[:-len('.index')]
  if zipfile.is_zipfile(path):
    with zipfile.ZipFile(path) as zf:
      if any(n.count('/') == 1 and n.endswith('/data.pkl') for n in zf.namelist()):
        return 'pt', path
    if list_zip_checkpoints(path):
      return 'tf_checkpoint_zip', path
  raise WeightFormatError(unrecognised)
