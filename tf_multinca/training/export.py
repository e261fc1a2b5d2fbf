"""Export of trained rules: SavedModel, Keras `.weights.h5`, Distill WebGL JSON; and read-back.

Every writer is atomic. The readers return the canonical weight dict of `model.WEIGHT_NAMES`, so
a model round-trips through `CAModel.set_rule_weights`.
"""

import json
import os

import numpy as np
import tensorflow as tf

from tf_multinca import export as export_lib
from tf_multinca import model as model_lib
from tf_multinca import multi
from tf_multinca.pretrained import formats
from tf_multinca import fileio as io


def save_saved_model(rules, path, info=None):
  """Writes `rules` (a CAModel or a list: original first) as a SavedModel directory, atomically.

  The SavedModel is `tf_multinca.export`'s: signatures `step` and `rollout`, the rules'
  canonical weights and `info`. The rules are copied first, so a model trained under a
  `tf.distribute` strategy exports as plain variables.
  """
  if isinstance(rules, model_lib.CAModel):
    rules = [rules]
  copies = [model_lib.CAModel.from_config(r.get_config()).set_rule_weights(
      r.get_rule_weights(), source=f'rule {i}') for i, r in enumerate(rules)]
  model = copies[0] if len(copies) == 1 else multi.MultiNCA(copies)
  return io.write_dir(path, lambda tmp: export_lib.save_saved_model(model, tmp, info))


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
