r"""SavedModel, TF.js and WebGL JSON export of a single rule or a Multiple NCA pairing.

    from tf_multinca import export, pretrained
    pair = pretrained.load_pairing('paper/lizard/virus/lizard_persist_to_red_squareside_2')
    paths = export.export(export.pairing_model(pair), 'out/lizard_red',
                          formats=('saved_model', 'tfjs'), info=export.pairing_info(pair))

A SavedModel has two signatures, both returning {'x': next state}:

    step(x [B,H,W,C] float32, fire_rate [], angle [], step_size [])
    rollout(x [B,H,W,C] float32, steps [] int32, fire_rate [], angle [], step_size [])

`C` is 16 for a single rule and `15 + k` for a Multiple NCA of k rules. The graphs call the
models' own methods with `rng=None`, so their randomness is `tf.random.uniform`, which TF.js
converts (stateless RNG ops and `tf.random.Generator` do not).

The TF.js format needs the optional converter (`pip install --no-deps tensorflowjs==4.22.0`: a
plain install would downgrade TensorFlow). It runs in a child process, see `convert_to_tfjs`.
An export directory holds::

    meta.json          what the demo needs: kind, grid, channels, seed cells, colours, names
    saved_model/       (format saved_model)
    tfjs/step/, tfjs/rollout/   model.json + weights (format tfjs)
    selfcheck.json, selfcheck.bin   a state and the SavedModel's step of it (format tfjs)
    webgl/rule<i>.json (format webgl_json: one Distill WebGL file per rule, quantised)
"""

import glob
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import types

import numpy as np
import tensorflow as tf

from tf_multinca import errors
from tf_multinca import fileio
from tf_multinca import injection as inj
from tf_multinca import layout
from tf_multinca import model as model_lib
from tf_multinca import multi
from tf_multinca import perception
from tf_multinca import render
from tf_multinca.pretrained import formats as formats_lib

SIGNATURES = ('step', 'rollout')
FORMATS = ('saved_model', 'tfjs', 'webgl_json')
TFJS_VERSION = '4.22.0'
TFJS_INSTALL = f'pip install --no-deps tensorflowjs=={TFJS_VERSION}'
META_VERSION = 1


class ExportError(errors.Error, RuntimeError):
  """An export that cannot be made (missing converter, failed conversion, bad arguments)."""


class UnsupportedOpsError(ExportError):
  """A converted graph uses ops TF.js does not support."""

  def __init__(self, source, ops):
    self.ops = sorted(ops)
    super().__init__(f'{source} uses ops TF.js does not support: {", ".join(self.ops)}')


# --------------------------------------------------------------------------------------------
# The exported module
# --------------------------------------------------------------------------------------------


def channels_of(model):
  """State channels of a `CAModel` (16) or a `MultiNCA` (15 + k)."""
  if isinstance(model, multi.MultiNCA):
    return model.channels
  if isinstance(model, model_lib.CAModel):
    return model.channel_n
  raise TypeError(f'expected a CAModel or a MultiNCA, got {type(model).__name__}')


# The models' default 'sparse' form gathers the cells that update (`Where`: a dynamic shape that
# TF.js graph execution refuses). The export uses the readable 'reference' form (SPEC 2-3, static
# shapes). Not 'dense': the converter fuses its `matmul(h, w2) + matmul(c, b2)` into a
# `_FusedMatMul` with a rank-2 "bias", which the TF.js wasm backend rejects.
EXPORT_IMPL = 'reference'
_STATIC_IMPLS = ('reference',)


def export_form(model):
  """`model` in the form the export uses (`EXPORT_IMPL`), sharing or copying its weights.

  A `MultiNCA` is rewrapped around the same rules (same variables); a `CAModel` is copied with
  its weights. A model already in that form is returned as is.
  """
  if isinstance(model, multi.MultiNCA):
    if getattr(model, 'impl', EXPORT_IMPL) in _STATIC_IMPLS:
      return model
    return multi.MultiNCA(model.rules, impl=EXPORT_IMPL)
  if not isinstance(model, model_lib.CAModel):
    raise TypeError(f'expected a CAModel or a MultiNCA, got {type(model).__name__}')
  config = model.get_config()
  if config.get('impl', EXPORT_IMPL) in _STATIC_IMPLS:
    return model
  config['impl'] = EXPORT_IMPL
  copy = model_lib.CAModel.from_config(config)
  return copy.set_rule_weights(model.get_rule_weights(), source='the model to export')


class NCAModule(tf.Module):
  """A `tf.Module` exposing a model's step and rollout as TF.js-convertible `tf.function`s.

  It holds the model (and so its variables) in its static-shape form (`export_form`) and calls
  the model itself: the math lives only in `CAModel` / `MultiNCA`. It also holds plain copies of
  each rule's canonical tensors (`rule_weights[i]`, in `model.WEIGHT_NAMES` order) and an
  `info` JSON string (convention, rules, weight names, and the caller's fields), so the weights
  read back without Keras (`training.export.read_saved_model`).
  """

  def __init__(self, model, name=None, info=None):
    super().__init__(name=name)
    self.model = export_form(model)
    c = channels_of(model)
    rules = model.rules if isinstance(model, multi.MultiNCA) else [model]
    self.rule_weights = [
        [tf.Variable(r.get_rule_weights()[n], trainable=False, name=n.replace('/', '_'))
         for n in model_lib.WEIGHT_NAMES] for r in rules]
    info = dict(info or {}, convention=rules[0].convention.name, rules=len(rules),
                weight_names=list(model_lib.WEIGHT_NAMES))
    self.info = tf.Variable(json.dumps(info), trainable=False, name='info')
    state = tf.TensorSpec([None, None, None, c], tf.float32, name='x')
    scalar = lambda n, d=tf.float32: tf.TensorSpec([], d, name=n)  # noqa: E731
    params = [scalar('fire_rate'), scalar('angle'), scalar('step_size')]
    self.step = tf.function(self._step, input_signature=[state] + params)
    self.rollout = tf.function(self._rollout,
                               input_signature=[state, scalar('steps', tf.int32)] + params)

  def _next(self, x, fire_rate, angle, step_size):
    # rng=None: tf.random.uniform, the random op TF.js converts.
    return self.model(x, fire_rate=fire_rate, angle=angle, step_size=step_size, rng=None)

  def _step(self, x, fire_rate, angle, step_size):
    """One step: {'x': `[B, H, W, C]`}."""
    return {'x': self._next(x, fire_rate, angle, step_size)}

  def _rollout(self, x, steps, fire_rate, angle, step_size):
    """`steps` steps in one graph (a While loop; TF.js runs it with executeAsync)."""
    def body(i, s):
      s = self._next(s, fire_rate, angle, step_size)
      s.set_shape(x.shape)  # the loop needs a fixed shape signature
      return i + 1, s
    _, x = tf.while_loop(lambda i, _: i < steps, body, [tf.constant(0), x])
    return {'x': x}

  def signatures(self):
    return {'step': self.step, 'rollout': self.rollout}


# --------------------------------------------------------------------------------------------
# Models and metadata
# --------------------------------------------------------------------------------------------


def pairing_model(pair):
  """The `MultiNCA` of a `pretrained.Pairing`: rule 0 the original, rule 1 the adversary."""
  return multi.MultiNCA([pair.original, pair.adversary])


def pairing_info(pair):
  """Metadata of a `pretrained.Pairing` for `describe` / `export`."""
  return {'original': pair.original_name, 'adversary': pair.adversary_name,
          'injection': pair.injection, 'target': pair.target}


def describe(model, name=None, info=None):
  """The JSON-ready description the demo and the JS tests read (`meta.json`).

  Everything the page needs about layout and conventions is written here from the library, so
  the page never hard-codes a channel index.

  Args:
    model: `CAModel` or `MultiNCA`.
    name: the export's name.
    info: more fields (names of the rules, injection, target).

  Returns:
    A dict.
  """
  is_multi = isinstance(model, multi.MultiNCA)
  rules = model.rules if is_multi else [model]
  conv = rules[0].convention
  seed = model.seed(1).numpy()[0]  # [H, W, C]
  h, w, c = seed.shape
  cells = [[int(y), int(x), int(ch), float(seed[y, x, ch])] for y, x, ch in np.argwhere(seed)]
  if is_multi:
    alphas = [layout.multi_alpha(i) for i in range(model.k)]
  else:
    alphas = [layout.ALPHA]
  colours = np.concatenate([render.ORIGINAL_COLOUR[None], render.ADVERSARY_COLOUR[None],
                            render.EXTRA_COLOURS])[:len(alphas)]
  meta = {
      'meta_version': META_VERSION,
      'name': name,
      'kind': 'pairing' if is_multi else 'single',
      'rules': len(rules),
      'channels': int(c),
      'grid': [int(h), int(w)],
      'rgb_channels': list(range(3)),
      'alpha_channels': alphas,
      'seed_cells': cells,
      'fire_rate': float(rules[0].fire_rate),
      'alive_threshold': float(perception.ALIVE_THRESHOLD),
      'convention': {'name': conv.name, 'padding': conv.padding, 'colours': conv.colours,
                     'seed': conv.seed, 'fire_inclusive': conv.fire_inclusive},
      'mask_colours': [[float(v) for v in col] for col in colours],
      'signatures': {
          'step': ['x', 'fire_rate', 'angle', 'step_size'],
          'rollout': ['x', 'steps', 'fire_rate', 'angle', 'step_size'],
      },
  }
  meta.update(info or {})
  return meta


# --------------------------------------------------------------------------------------------
# SavedModel
# --------------------------------------------------------------------------------------------


def save_saved_model(model, path, info=None):
  """Writes `model` as a SavedModel with the signatures `step` and `rollout` (and the rules'
  canonical weights and `info`, see `NCAModule`).

  Returns:
    The `NCAModule` that was saved.
  """
  module = NCAModule(model, info=info)
  tf.saved_model.save(module, os.fspath(path), signatures=module.signatures())
  return module


def call_signature(fn, x, steps=None, fire_rate=1.0, angle=0.0, step_size=1.0):
  """Calls a loaded `step` (or, with `steps`, `rollout`) signature: returns `[B, H, W, C]`."""
  kwargs = dict(x=tf.convert_to_tensor(x, tf.float32),
                fire_rate=tf.constant(fire_rate, tf.float32),
                angle=tf.constant(angle, tf.float32), step_size=tf.constant(step_size, tf.float32))
  if steps is not None:
    kwargs['steps'] = tf.constant(steps, tf.int32)
  return fn(**kwargs)['x']


# --------------------------------------------------------------------------------------------
# TF.js
# --------------------------------------------------------------------------------------------


def tfjs_available():
  """Whether the optional `tensorflowjs` converter package is installed."""
  return importlib.util.find_spec('tensorflowjs') is not None


def _require_tfjs():
  if not tfjs_available():
    raise ExportError(f'the TF.js format needs the optional converter: {TFJS_INSTALL} '
                      '(--no-deps: its declared dependencies would downgrade TensorFlow; '
                      '.ci/install_web.sh installs it)')


def convert_to_tfjs(saved_model_dir, out_dir, signatures=SIGNATURES, timeout=600):
  """Converts each signature of a SavedModel into `out_dir/<signature>/model.json`.

  The converter runs in a child process (`_converter_main`): it imports tf_keras,
  tensorflow_hub, tensorflow_decision_forests and its own JAX module, none of which the TF
  SavedModel path uses, so the child stands in small empty modules for them. Keeping that out of
  this process leaves the caller's `sys.modules` untouched.

  Returns:
    {signature: path of its model.json}.

  Raises:
    ExportError: the converter is missing or failed (its output is in the message).
  """
  _require_tfjs()
  out_dir = pathlib.Path(out_dir)
  env = dict(os.environ)
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  # The child must import this very package (an editable checkout or an installed copy).
  root = str(pathlib.Path(__file__).resolve().parents[1])
  env['PYTHONPATH'] = os.pathsep.join(p for p in (root, env.get('PYTHONPATH')) if p)
  cmd = [sys.executable, '-m', 'tf_multinca.export', os.fspath(saved_model_dir),
         os.fspath(out_dir), ','.join(signatures)]
  p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
  if p.returncode != 0:
    raise ExportError(f'TF.js conversion of {saved_model_dir} failed (exit {p.returncode}):\n'
                      f'{p.stderr[-4000:]}')
  paths = {s: out_dir / s / 'model.json' for s in signatures}
  for s, path in paths.items():
    if not path.is_file():
      raise ExportError(f'the converter wrote no {path} for signature {s!r}:\n{p.stderr[-2000:]}')
  return paths


def _install_converter_stand_ins():
  """Empty modules for the converter's imports the SavedModel path never uses (child only)."""
  for name in ('tf_keras', 'tensorflow_decision_forests', 'tensorflow_hub'):
    if importlib.util.find_spec(name) is None:
      sys.modules[name] = types.ModuleType(name)
  # Not a stand-in for jax itself: Keras probes for jax and a fake one breaks it.
  jax_conv = types.ModuleType('tensorflowjs.converters.jax_conversion')
  jax_conv.convert_jax = None
  sys.modules['tensorflowjs.converters.jax_conversion'] = jax_conv


def _converter_main(argv):
  """`python -m tf_multinca.export SAVED_MODEL OUT_DIR step,rollout`: the converter child."""
  if len(argv) != 3:
    print('usage: python -m tf_multinca.export SAVED_MODEL OUT_DIR SIGNATURES', file=sys.stderr)
    return 2
  saved_model, out_dir, signatures = argv
  _install_converter_stand_ins()
  # pylint: disable-next=g-import-not-at-top
  from tensorflowjs.converters import tf_saved_model_conversion_v2 as conversion
  for sig in signatures.split(','):
    # control_flow_v2: the rollout's While loop; the converter checks every op against its list.
    conversion.convert_tf_saved_model(saved_model, os.path.join(out_dir, sig), signature_def=sig,
                                      control_flow_v2=True)
  return 0


def model_ops(model_json):
  """Every op name of a converted TF.js graph, loop bodies included.

  Args:
    model_json: path of a `model.json` or its parsed dict.

  Returns:
    A sorted list of op names.
  """
  doc = model_json
  if not isinstance(doc, dict):
    doc = json.loads(pathlib.Path(model_json).read_text(encoding='utf-8'))
  topo = doc['modelTopology']
  ops = {n['op'] for n in topo.get('node', [])}
  for fn in topo.get('library', {}).get('function', []):
    ops |= {n['op'] for n in fn.get('nodeDef', [])}
  return sorted(ops)


def supported_tfjs_ops():
  """The TF op names TF.js executes: the op lists shipped with the `tensorflowjs` converter.

  They are the converter's copy of tfjs-converter's op mappers. Read as files: importing the
  package would pull in its unused dependencies.
  """
  _require_tfjs()
  spec = importlib.util.find_spec('tensorflowjs')
  op_dir = pathlib.Path(list(spec.submodule_search_locations)[0]) / 'op_list'
  names = set()
  for path in sorted(glob.glob(str(op_dir / '*.json'))):
    names |= {op['tfOpName'] for op in json.loads(pathlib.Path(path).read_text('utf-8'))}
  if not names:
    raise ExportError(f'no TF.js op lists found in {op_dir}')
  return names


def check_tfjs_ops(model_json, supported=None):
  """Raises `UnsupportedOpsError` if the graph uses an op TF.js does not support.

  Returns:
    The graph's ops (sorted).
  """
  supported = supported_tfjs_ops() if supported is None else set(supported)
  ops = model_ops(model_json)
  bad = [op for op in ops if op not in supported]
  if bad:
    raise UnsupportedOpsError(model_json if not isinstance(model_json, dict) else 'the graph', bad)
  return ops


def selfcheck_state(model, grow_steps=40, seed=0):
  """A deterministic, non-trivial state: grown from the seed, and for a pairing injected.

  The organism grows `grow_steps` steps (fire rate 0.5, a seeded generator); a pairing then
  gets a 0.3 spray of adversaries so both rules and their shared cells are exercised.

  Returns:
    `[1, H, W, C]` float32 NumPy array.
  """
  rng = tf.random.Generator.from_seed(seed)
  step = tf.function(lambda s: model(s, fire_rate=0.5, rng=rng))
  x = model.seed(1)
  for _ in range(grow_steps):
    x = step(x)
  if isinstance(model, multi.MultiNCA) and model.k > 1:
    x = inj.inject(x, inj.spray_mask(x, 0.3, rng))
  return x.numpy()


def write_selfcheck(saved_model_dir, model, out_dir, **params):
  """Writes a state and the SavedModel's step of it (fire rate 1: deterministic) for the JS tests.

  Args:
    saved_model_dir: the SavedModel of `model`, reloaded here: the JS tests compare the
      converted graph with what Python users of the SavedModel get.
    model: the model (it grows the state).
    out_dir: where `selfcheck.bin` (float32 little-endian: input then output) and
      `selfcheck.json` go.
    **params: fire_rate, angle, step_size of the step (default 1, 0, 1).

  Returns:
    The `selfcheck.json` dict.
  """
  out_dir = pathlib.Path(out_dir)
  params = dict(dict(fire_rate=1.0, angle=0.0, step_size=1.0), **params)
  x = selfcheck_state(model)
  loaded = tf.saved_model.load(os.fspath(saved_model_dir))
  y = call_signature(loaded.signatures['step'], x, **params).numpy()
  (out_dir / 'selfcheck.bin').write_bytes(np.concatenate([x.ravel(), y.ravel()])
                                          .astype('<f4').tobytes())
  doc = {'shape': list(x.shape), 'input_offset': 0, 'output_offset': int(x.size * 4),
         'params': params,
         'alive_in': int((x[..., _alpha_slice(model)].max(-1) > perception.ALIVE_THRESHOLD).sum())}
  (out_dir / 'selfcheck.json').write_text(json.dumps(doc, indent=1), encoding='utf-8')
  return doc


def _alpha_slice(model):
  if isinstance(model, multi.MultiNCA):
    return slice(layout.MULTI_ALPHA0, layout.MULTI_ALPHA0 + model.k)
  return slice(layout.ALPHA, layout.ALPHA + 1)


# --------------------------------------------------------------------------------------------
# One export directory
# --------------------------------------------------------------------------------------------


def export(model, out_dir, formats=('saved_model', 'tfjs'), name=None, info=None,
           check_ops=True):
  """Exports `model` into `out_dir` in the given formats (see the module docstring).

  Args:
    model: `CAModel` or `MultiNCA`.
    out_dir: the export's directory (created; files of the requested formats are replaced).
    formats: any of `FORMATS`.
    name: the export's name (default: the directory's name).
    info: extra metadata (`pairing_info`).
    check_ops: check every converted graph with `check_tfjs_ops`.

  Returns:
    {what: path}: 'meta', and 'saved_model', 'tfjs/<signature>', 'webgl/<i>' as exported.

  Raises:
    ExportError: an unknown format, a missing converter, a failed conversion or an unsupported
      op.
  """
  formats = tuple(formats)
  bad = [f for f in formats if f not in FORMATS]
  if bad or not formats:
    raise ExportError(f'formats {bad or "(none)"}: expected some of {FORMATS}')
  if 'tfjs' in formats:
    _require_tfjs()  # before any work
  out_dir = pathlib.Path(out_dir)
  out_dir.mkdir(parents=True, exist_ok=True)
  name = name or out_dir.name
  paths = {}
  meta = describe(model, name, info)
  meta['formats'] = list(formats)

  if 'saved_model' in formats or 'tfjs' in formats:
    with tempfile.TemporaryDirectory(dir=out_dir, prefix='.tmp') as tmp:
      saved = pathlib.Path(tmp) / 'saved_model'
      save_saved_model(model, saved, info)
      (saved / 'assets.extra').mkdir(exist_ok=True)
      (saved / 'assets.extra' / 'meta.json').write_text(json.dumps(meta, indent=1), 'utf-8')
      if 'tfjs' in formats:
        converted = convert_to_tfjs(saved, pathlib.Path(tmp) / 'tfjs')
        if check_ops:
          for path in converted.values():
            check_tfjs_ops(path)
        _replace(pathlib.Path(tmp) / 'tfjs', out_dir / 'tfjs')
        paths.update({f'tfjs/{s}': out_dir / 'tfjs' / s / 'model.json' for s in converted})
        meta['selfcheck'] = write_selfcheck(saved, model, out_dir)
      if 'saved_model' in formats:
        _replace(saved, out_dir / 'saved_model')
        paths['saved_model'] = out_dir / 'saved_model'

  if 'webgl_json' in formats:
    rules = model.rules if isinstance(model, multi.MultiNCA) else [model]
    webgl = out_dir / 'webgl'
    webgl.mkdir(exist_ok=True)
    for i, r in enumerate(rules):
      path = webgl / f'rule{i}.json'
      formats_lib.write_webgl_json(r.get_rule_weights(), path)
      paths[f'webgl/{i}'] = path

  fileio.write_json(out_dir / 'meta.json', meta)
  paths['meta'] = out_dir / 'meta.json'
  return paths


def _replace(src, dst):
  """Moves `src` to `dst`, replacing what was there."""
  dst = pathlib.Path(dst)
  if dst.exists():
    shutil.rmtree(dst)
  shutil.move(os.fspath(src), os.fspath(dst))


def write_index(models_dir):
  """Writes `models_dir/index.json`: every export below it that has a TF.js model.

  The demo page lists these in its model menu.

  Returns:
    The index dict: {'models': [{'name', 'kind', 'path', 'original', 'adversary', ...}]}.
  """
  models_dir = pathlib.Path(models_dir)
  items = []
  for meta_path in sorted(models_dir.glob('*/meta.json')):
    meta = json.loads(meta_path.read_text(encoding='utf-8'))
    if not (meta_path.parent / 'tfjs' / 'step' / 'model.json').is_file():
      continue
    items.append({'name': meta.get('name') or meta_path.parent.name,
                  'path': meta_path.parent.name + '/', 'kind': meta.get('kind'),
                  'original': meta.get('original'), 'adversary': meta.get('adversary'),
                  'injection': meta.get('injection')})
  doc = {'models': items}
  models_dir.mkdir(parents=True, exist_ok=True)
  fileio.write_json(models_dir / 'index.json', doc)
  return doc


if __name__ == '__main__':
  sys.exit(_converter_main(sys.argv[1:]))
