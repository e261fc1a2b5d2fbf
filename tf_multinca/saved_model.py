r"""The SavedModel format: the exported module, its one (atomic) writer and its reader.

A SavedModel has two signatures, both returning {'x': next state}:

    step(x [B,H,W,C] float32, fire_rate [], angle [], step_size [])
    rollout(x [B,H,W,C] float32, steps [] int32, fire_rate [], angle [], step_size [])

`C` is 16 for a single rule and `15 + k` for a Multiple NCA of k rules. The graphs call the
models' own methods with `rng=None`, so their randomness is `tf.random.uniform`, which TF.js
converts (stateless RNG ops and `tf.random.Generator` do not). The module also carries every
rule's canonical weights and an `info` JSON string, so `read` gets the weights back without
Keras.

Loading a SavedModel runs its graph: `read` is for files this project wrote (the export's
tests). Names and paths from users go through `hub.load`, which never loads a SavedModel.
"""

import json
import os
import pathlib

import tensorflow as tf

from tf_multinca import fileio
from tf_multinca import model as model_lib
from tf_multinca import multi

SIGNATURES = ('step', 'rollout')

# The models' default 'sparse' form gathers the cells that update (`Where`: a dynamic shape that
# TF.js graph execution refuses). The export uses the readable 'reference' form (SPEC 2-3, static
# shapes). Not 'dense': the converter fuses its `matmul(h, w2) + matmul(c, b2)` into a
# `_FusedMatMul` with a rank-2 "bias", which the TF.js wasm backend rejects.
EXPORT_IMPL = 'reference'
_STATIC_IMPLS = ('reference',)
ASSETS_EXTRA = 'assets.extra'  # where `write` puts its `extra_files` (TF leaves it alone)


def rules_of(model):
  """The rules of a `CAModel` ([model]) or a `MultiNCA` (original first)."""
  if isinstance(model, multi.MultiNCA):
    return list(model.rules)
  if isinstance(model, model_lib.CAModel):
    return [model]
  raise TypeError(f'expected a CAModel or a MultiNCA, got {type(model).__name__}')


def channels_of(model):
  """State channels of a `CAModel` (16) or a `MultiNCA` (15 + k)."""
  if isinstance(model, multi.MultiNCA):
    return model.channels
  if isinstance(model, model_lib.CAModel):
    return model.channel_n
  raise TypeError(f'expected a CAModel or a MultiNCA, got {type(model).__name__}')


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


def plain_copy(model):
  """A copy of `model` (a `CAModel`, a `MultiNCA` or a list of rules, original first) in the
  export's form, with plain variables: a model trained under a `tf.distribute` strategy holds
  distributed ones, which do not save as a plain SavedModel."""
  rules = model if isinstance(model, (list, tuple)) else rules_of(model)
  copies = []
  for i, r in enumerate(rules):
    config = dict(r.get_config(), impl=EXPORT_IMPL)
    copies.append(model_lib.CAModel.from_config(config).set_rule_weights(
        r.get_rule_weights(), source=f'rule {i}'))
  if len(copies) == 1 and not isinstance(model, multi.MultiNCA):
    return copies[0]
  return multi.MultiNCA(copies, impl=EXPORT_IMPL)


class NCAModule(tf.Module):
  """A `tf.Module` exposing a model's step and rollout as TF.js-convertible `tf.function`s.

  It holds the model (and so its variables) in its static-shape form (`export_form`) and calls
  the model itself: the math lives only in `CAModel` / `MultiNCA`. It also holds plain copies of
  each rule's canonical tensors (`rule_weights[i]`, in `model.WEIGHT_NAMES` order) and an
  `info` JSON string (convention, rules, weight names, and the caller's fields), so the weights
  read back without Keras (`read`).
  """

  def __init__(self, model, name=None, info=None):
    super().__init__(name=name)
    self.model = export_form(model)
    c = channels_of(model)
    rules = rules_of(model)
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


def write(model, path, info=None, extra_files=None):
  """Writes `model` as a SavedModel directory, atomically (the one SavedModel writer).

  Args:
    model: a `CAModel`, a `MultiNCA`, or a list of rules (original first). It is copied first
      (`plain_copy`), so a model trained under a `tf.distribute` strategy exports too.
    path: the directory (replaced as a whole: a crash leaves the previous one).
    info: extra fields of the module's `info` JSON.
    extra_files: {file name: text} written under `assets.extra/` (the export's `meta.json`).

  Returns:
    `path`.
  """
  module = NCAModule(plain_copy(model), info=info)

  def save(tmp):
    tf.saved_model.save(module, os.fspath(tmp), signatures=module.signatures())
    if extra_files:
      extra = pathlib.Path(tmp) / ASSETS_EXTRA
      extra.mkdir(exist_ok=True)
      for name, text in extra_files.items():
        (extra / name).write_text(text, encoding='utf-8')
  return fileio.write_dir(path, save)


def read(path, rule=-1):
  """(canonical weights of rule `rule` (default the last: the adversary), info dict).

  Raises:
    WeightMismatchError: the stored tensors do not fit a rule.
  """
  loaded = tf.saved_model.load(os.fspath(path))
  info = json.loads(loaded.info.numpy().decode('utf-8'))
  tensors = loaded.rule_weights[rule]
  weights = {n: v.numpy() for n, v in zip(info['weight_names'], tensors)}
  model_lib.check_weights(weights, f'SavedModel {path}')
  return weights, info


def call_signature(fn, x, steps=None, fire_rate=1.0, angle=0.0, step_size=1.0):
  """Calls a loaded `step` (or, with `steps`, `rollout`) signature: returns `[B, H, W, C]`."""
  kwargs = dict(x=tf.convert_to_tensor(x, tf.float32),
                fire_rate=tf.constant(fire_rate, tf.float32),
                angle=tf.constant(angle, tf.float32), step_size=tf.constant(step_size, tf.float32))
  if steps is not None:
    kwargs['steps'] = tf.constant(steps, tf.int32)
  return fn(**kwargs)['x']
