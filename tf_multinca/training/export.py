"""Export of trained rules: SavedModel, Keras `.weights.h5`, Distill WebGL JSON; and read-back.

Every writer is atomic. The readers return the canonical weight dict of `model.WEIGHT_NAMES`, so
a model round-trips through `CAModel.set_rule_weights`.
"""

import json
import os

import numpy as np
import tensorflow as tf

from tf_multinca import layout
from tf_multinca import model as model_lib
from tf_multinca import multi
from tf_multinca.pretrained import formats
from tf_multinca import fileio as io


class ExportModule(tf.Module):
  """What a SavedModel holds: the rules, a `step` signature and the canonical weights.

  `step(x)` is one step of the single NCA (one rule, `[B, H, W, 16]`) or of the Multiple NCA
  (`[B, H, W, 15 + k]`), with the rules' fire rate. `rule_weights[i]` holds rule `i`'s canonical
  tensors in `model.WEIGHT_NAMES` order; `info` is a JSON string (convention, names).
  """

  def __init__(self, rules, info=None):
    super().__init__(name='tf_multinca_export')
    self.rules = list(rules)
    self.net = self.rules[0] if len(self.rules) == 1 else multi.MultiNCA(self.rules)
    channels = layout.CHANNEL_N if len(self.rules) == 1 else layout.multi_channels(len(rules))
    # Plain copies of the rule tensors: readable back without Keras.
    self.rule_weights = [
        [tf.Variable(r.get_rule_weights()[n], trainable=False, name=n.replace('/', '_'))
         for n in model_lib.WEIGHT_NAMES] for r in self.rules]
    info = dict(info or {}, convention=self.rules[0].convention.name, rules=len(self.rules),
                weight_names=list(model_lib.WEIGHT_NAMES))
    self.info = tf.Variable(json.dumps(info), trainable=False, name='info')
    self.step = tf.function(self._step, input_signature=[
        tf.TensorSpec([None, None, None, channels], tf.float32, name='x')])

  def _step(self, x):
    return self.net(x)


def save_saved_model(rules, path, info=None):
  """Writes `rules` (a CAModel or a list: original first) as a SavedModel directory."""
  if isinstance(rules, model_lib.CAModel):
    rules = [rules]
  module = ExportModule(rules, info)
  return io.write_dir(path, lambda tmp: tf.saved_model.save(module, tmp))


def read_saved_model(path, rule=-1):
  """(canonical weights of rule `rule` (default the last: the adversary), info dict)."""
  loaded = tf.saved_model.load(os.fspath(path))
  info = json.loads(loaded.info.numpy().decode('utf-8'))
  tensors = loaded.rule_weights[rule]
  weights = {n: v.numpy() for n, v in zip(info['weight_names'], tensors)}
  model_lib.check_weights(weights, f'SavedModel {path}')
  return weights, info


def save_weights_h5(ca, path):
  """Writes one CAModel's weights as Keras `.weights.h5` (the name must end so)."""
  if not str(path).endswith('.weights.h5'):
    raise ValueError(f'{path}: a Keras weights file must end in .weights.h5')
  return io.write_file(path, ca.save_weights, suffix='.weights.h5')


def read_weights_h5(path, convention='paper'):
  """The canonical weights of a `.weights.h5` written by `save_weights_h5`."""
  ca = model_lib.CAModel(convention=convention)
  ca.load_weights(os.fspath(path))
  return ca.get_rule_weights()


def save_webgl_json(ca, path):
  """Writes one CAModel as Distill WebGL uint8 JSON (lossy: 256 levels per tensor)."""
  weights = ca.get_rule_weights()
  return io.write_file(path, lambda tmp: formats.write_webgl_json(weights, tmp), suffix='.json')


def read_any(path, convention=None):
  """A CAModel from any exported file: a SavedModel dir, `.weights.h5`, or what
  `pretrained.load` reads (`.pt`, WebGL `.json`, checkpoints)."""
  path = os.fspath(path)
  if os.path.isdir(path) and os.path.exists(os.path.join(path, 'saved_model.pb')):
    weights, info = read_saved_model(path)
    conv = convention or info['convention']
    return model_lib.CAModel(convention=conv).set_rule_weights(weights, source=path)
  if path.endswith('.weights.h5'):
    return model_lib.CAModel(convention=convention or 'paper').set_rule_weights(
        read_weights_h5(path, convention or 'paper'), source=path)
  from tf_multinca import pretrained  # pylint: disable=g-import-not-at-top
  return pretrained.load(path, convention)


def max_abs_difference(a, b):
  """Largest absolute difference between two canonical weight dicts."""
  return max(float(np.max(np.abs(np.asarray(a[n]) - np.asarray(b[n]))))
             for n in model_lib.WEIGHT_NAMES)
