"""The TF.js format: the converter in a child process, the op check, and the self-check files.

The converter is optional (`pip install --no-deps tensorflowjs==4.22.0`: a plain install would
downgrade TensorFlow). It runs in a child process, `python -m tf_multinca.tfjs` (see
`convert`), so its imports never touch the caller's `sys.modules`.
"""

import glob
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import types

import numpy as np
import tensorflow as tf

from tf_multinca import errors
from tf_multinca import fileio
from tf_multinca import injection as inj
from tf_multinca import layout
from tf_multinca import multi
from tf_multinca import perception
from tf_multinca import saved_model

TFJS_VERSION = '4.22.0'
TFJS_INSTALL = f'pip install --no-deps tensorflowjs=={TFJS_VERSION}'


class ExportError(errors.Error, RuntimeError):
  """An export that cannot be made (missing converter, failed conversion, bad arguments)."""


class UnsupportedOpsError(ExportError):
  """A converted graph uses ops TF.js does not support."""

  def __init__(self, source, ops):
    self.ops = sorted(ops)
    super().__init__(f'{source} uses ops TF.js does not support: {", ".join(self.ops)}')


def available():
  """Whether the optional `tensorflowjs` converter package is installed."""
  return importlib.util.find_spec('tensorflowjs') is not None


def require():
  if not available():
    raise ExportError(f'the TF.js format needs the optional converter: {TFJS_INSTALL} '
                      '(--no-deps: its declared dependencies would downgrade TensorFlow; '
                      '.ci/install_web.sh installs it)')


def convert(saved_model_dir, out_dir, signatures=saved_model.SIGNATURES, timeout=600):
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
  require()
  out_dir = pathlib.Path(out_dir)
  env = dict(os.environ)
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  # The child must import this very package (an editable checkout or an installed copy).
  root = str(pathlib.Path(__file__).resolve().parents[1])
  env['PYTHONPATH'] = os.pathsep.join(p for p in (root, env.get('PYTHONPATH')) if p)
  cmd = [sys.executable, '-m', 'tf_multinca.tfjs', os.fspath(saved_model_dir),
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
  """`python -m tf_multinca.tfjs SAVED_MODEL OUT_DIR step,rollout`: the converter child."""
  if len(argv) != 3:
    print('usage: python -m tf_multinca.tfjs SAVED_MODEL OUT_DIR SIGNATURES', file=sys.stderr)
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


def supported_ops():
  """The TF op names TF.js executes: the op lists shipped with the `tensorflowjs` converter.

  They are the converter's copy of tfjs-converter's op mappers. Read as files: importing the
  package would pull in its unused dependencies.
  """
  require()
  spec = importlib.util.find_spec('tensorflowjs')
  op_dir = pathlib.Path(list(spec.submodule_search_locations)[0]) / 'op_list'
  names = set()
  for path in sorted(glob.glob(str(op_dir / '*.json'))):
    names |= {op['tfOpName'] for op in json.loads(pathlib.Path(path).read_text('utf-8'))}
  if not names:
    raise ExportError(f'no TF.js op lists found in {op_dir}')
  return names


def check_ops(model_json, supported=None):
  """Raises `UnsupportedOpsError` if the graph uses an op TF.js does not support.

  Returns:
    The graph's ops (sorted).
  """
  supported = supported_ops() if supported is None else set(supported)
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
  y = saved_model.call_signature(loaded.signatures['step'], x, **params).numpy()
  data = np.concatenate([x.ravel(), y.ravel()]).astype('<f4').tobytes()
  fileio.write_file(out_dir / 'selfcheck.bin', lambda tmp: pathlib.Path(tmp).write_bytes(data))
  doc = {'shape': list(x.shape), 'input_offset': 0, 'output_offset': int(x.size * 4),
         'params': params,
         'alive_in': int((x[..., _alpha_slice(model)].max(-1) > perception.ALIVE_THRESHOLD).sum())}
  fileio.write_json(out_dir / 'selfcheck.json', doc)
  return doc


def _alpha_slice(model):
  if isinstance(model, multi.MultiNCA):
    return slice(layout.MULTI_ALPHA0, layout.MULTI_ALPHA0 + model.k)
  return slice(layout.ALPHA, layout.ALPHA + 1)


if __name__ == '__main__':
  sys.exit(_converter_main(sys.argv[1:]))
