"""A run's TensorBoard: its tags and sections, HParams, image strips, and the event rewrite that
keeps a resumed run free of duplicate points.
"""

import dataclasses
import functools
import pathlib

import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import api as hp

from tf_multinca import fileio
from tf_multinca import render
from tf_multinca import configs as configs_lib
from tf_multinca.configs import base as config_lib

# The train step's outputs under sections one reads together. The cosine is logged as
# 1 - cosine (near 1 its axis would read "1 1 1 1").
TB_TAGS = {
    'loss': 'train/loss', 'loss/target': 'train/target', 'loss/old': 'train/old_cells',
    'loss/l3': 'train/l3', 'loss/max_sample': 'train/max_sample_loss',
    'outliers_dropped': 'train/outliers_dropped',
    'original_fraction': 'takeover/original_fraction', 'alive': 'takeover/alive',
    'weight_distance': 'weights/distance', 'cosine_similarity': 'weights/one_minus_cosine',
    'grad_norm': 'weights/grad_norm',
    'lr': 'optim/lr', 'rollout_steps': 'optim/rollout_steps', 'mean_age': 'optim/mean_age',
}
# The adversary's loss terms: a base NCA's step reports them as constant zeros, not logged.
ADVERSARY_ONLY = frozenset({'loss/old', 'loss/l3'})
# Evaluation fields that are the protocol, not results: not logged as scalars.
EVAL_CONSTANTS = frozenset({'seeds', 'inject_at', 'steps_after_injection', 'steps',
                            'no_injection', 'weight_distance', 'cosine_similarity'})
HPARAM_METRICS = ('valid/score', 'eval/mse', 'eval/original_fraction')


def logdir(workdir, config):
  """`<workdir>/tensorboard/<config name>`: TensorBoard names the run after the config."""
  return pathlib.Path(workdir) / 'tensorboard' / (config.name or 'run')


@functools.lru_cache(maxsize=None)
def varying_fields(kind):
  """The config fields whose values differ between the named configs of `kind` (the HParams
  worth comparing runs by), plus `name`."""
  configs = [configs_lib.get_config(n) for n in configs_lib.names(kind)
             if not n.endswith('_testing')]
  skip = {'description', 'register', 'compare_with'}
  return ('name',) + tuple(
      f.name for f in dataclasses.fields(config_lib.TrainConfig)
      if f.name not in skip and f.name != 'name'
      and len({repr(getattr(c, f.name)) for c in configs}) > 1)


def hparams(c):
  """{field: value} of `varying_fields`, tuples joined by commas (HParams takes scalars)."""
  out = {}
  for name in varying_fields(c.kind):
    v = getattr(c, name)
    out[name] = v if isinstance(v, (bool, int, float, str)) else ','.join(str(x) for x in v)
  return out


def write_hparams(writer, c):
  """The run's HParams (its varying fields) and the metrics the table shows."""
  with writer.as_default():
    hp.hparams_config(hparams=[hp.HParam(k) for k in hparams(c)],
                      metrics=[hp.Metric(m) for m in HPARAM_METRICS])
    hp.hparams(hparams(c), trial_id=c.name or 'run')


def write_train(writer, out, step, is_adversary):
  """The train step's outputs `out` under `TB_TAGS` (a single NCA's alive under train/)."""
  with writer.as_default():
    for k, tag in TB_TAGS.items():
      if k in out and (is_adversary or k not in ADVERSARY_ONLY):
        v = 1.0 - out[k] if k == 'cosine_similarity' else out[k]
        tf.summary.scalar(tag if is_adversary or k != 'alive' else 'train/alive', v, step=step)


def write_evaluation(writer, prefix, m, step):
  """The results (not the protocol) of evaluation metrics `m` as `<prefix>/<name>` scalars."""
  with writer.as_default():
    for k, v in m.items():
      if isinstance(v, (int, float)) and k not in EVAL_CONSTANTS:
        tf.summary.scalar(f'{prefix}/{k}', v, step=step)


def strip(states, convention, with_mask):
  """Organisms above, cell masks below (`with_mask`: a multi state), as one float image
  `[h, w, 3]` (the pool's image in TensorBoard)."""
  states = states.numpy() if hasattr(states, 'numpy') else np.asarray(states)
  rows = [render.state_to_rgb(states, convention)]
  if with_mask:
    rows.append(render.cell_mask_rgb(states))
  images = np.concatenate(rows, 0)
  return render.tile(render.zoom(images, 2), cols=len(states), pad=2).astype(np.float32)


def drop_events_after(directory, step):
  """Rewrites the event files of `directory` without the summaries of steps after `step` (what
  a killed run logged past its last checkpoint, which the resumed run logs again), so
  TensorBoard shows no duplicate points. Returns the number of events dropped. (TensorBoard's
  SessionLog purge does not cover TF2 summaries.)"""
  dropped = 0
  for f in sorted(pathlib.Path(directory).glob('events.out.tfevents.*')):
    kept, late = [], 0
    try:
      for record in tf.data.TFRecordDataset(str(f)):
        event = event_pb2.Event.FromString(record.numpy())
        if event.HasField('summary') and event.step > step:
          late += 1
        else:
          kept.append(record.numpy())
    except tf.errors.DataLossError:
      late += 1  # a record cut by the kill
    if not late:
      continue

    def write(tmp, records=kept):
      with tf.io.TFRecordWriter(tmp) as w:
        for r in records:
          w.write(r)

    fileio.write_file(f, write)
    dropped += late
  return dropped
