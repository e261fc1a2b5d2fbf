"""Export of trained rules: the SavedModel and Distill WebGL JSON of a training run.

Every writer is atomic. (`.weights.h5` files are `weights_file`'s; models load by name through
`hub.load`, which never loads a SavedModel.)
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
  """(canonical weights of rule `rule` (default the last: the adversary), info dict).

  Loading a SavedModel runs its graph: only for files this project wrote (tests of the
  export). Names and paths from users go through `hub.load`, which refuses SavedModels.
  """
  loaded = tf.saved_model.load(os.fspath(path))
  info = json.loads(loaded.info.numpy().decode('utf-8'))
  tensors = loaded.rule_weights[rule]
  weights = {n: v.numpy() for n, v in zip(info['weight_names'], tensors)}
  model_lib.check_weights(weights, f'SavedModel {path}')
  return weights, info


def save_webgl_json(ca, path):
  """Writes one CAModel as Distill WebGL uint8 JSON (lossy: 256 levels per tensor)."""
  weights = ca.get_rule_weights()
  return io.write_file(path, lambda tmp: formats.write_webgl_json(weights, tmp), suffix='.json')


def max_abs_difference(a, b):
  """Largest absolute difference between two canonical weight dicts."""
  return max(float(np.max(np.abs(np.asarray(a[n]) - np.asarray(b[n]))))
             for n in model_lib.WEIGHT_NAMES)
