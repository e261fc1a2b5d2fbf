"""The one training loop: adversaries of a Multiple NCA (the paper) and single NCAs (Distill).

`Trainer(config, workdir).run()` builds everything from a `TrainConfig`, resumes from the last
checkpoint in `workdir` if there is one, trains with a custom loop (one `tf.function` per train
step, everything on the device), logs to TensorBoard, checkpoints, and at the end evaluates on
fresh seeds and exports. Workdir layout::

    config.json          the config (a resumed run must match it, see base.RESUMABLE_CHANGES)
    checkpoints/         tf.train.CheckpointManager: trainee, optimizer, pool, step, RNG
    tensorboard/         scalars, image strips, hparams
    metrics.json         the final evaluation (written atomically)
    export/              saved_model/, <trainee>.weights.h5 (and nca: model.json, WebGL)
"""

import dataclasses
import functools
import json
import math
import os
import pathlib
import re
import subprocess
import time

import numpy as np
import tensorflow as tf
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import api as hp

from tf_multinca import errors
from tf_multinca import conventions as conv_lib
from tf_multinca import hub
from tf_multinca import injection as inj
from tf_multinca import layout
from tf_multinca import limits
from tf_multinca import metrics
from tf_multinca import model as model_lib
from tf_multinca import multi
from tf_multinca import registry
from tf_multinca import render
from tf_multinca import rollout
from tf_multinca import targets
from tf_multinca import weights_file
from tf_multinca import configs as configs_lib
from tf_multinca.configs import base as config_lib
from tf_multinca.training import distribute
from tf_multinca.training import evaluate
from tf_multinca.training import export
from tf_multinca import fileio as io
from tf_multinca.training import pool as pool_lib
from tf_multinca.training import schedules

keras = tf.keras

# The l3 distance at a copied initialisation is 0, where sqrt has no gradient; a tiny offset
# inside keeps it finite (0 there) without changing the value measurably.
_SQRT_EPS = 1e-12
_GRAD_EPS = 1e-8
PROVENANCE_FILE = 'provenance.json'  # the code commit(s) a run was trained at

# TensorBoard: the train step's outputs under sections one reads together. The cosine is
# logged as 1 - cosine (near 1 its axis would read "1 1 1 1").
TB_TAGS = {
    'loss': 'train/loss', 'loss/target': 'train/target', 'loss/old': 'train/old_cells',
    'loss/l3': 'train/l3', 'loss/max_sample': 'train/max_sample_loss',
    'outliers_dropped': 'train/outliers_dropped',
    'original_fraction': 'takeover/original_fraction', 'alive': 'takeover/alive',
    'weight_distance': 'weights/distance', 'cosine_similarity': 'weights/one_minus_cosine',
    'grad_norm': 'weights/grad_norm',
    'lr': 'optim/lr', 'rollout_steps': 'optim/rollout_steps', 'mean_age': 'optim/mean_age',
}
# Evaluation fields that are the protocol, not results: not logged as scalars.
_EVAL_CONSTANTS = frozenset({'seeds', 'inject_at', 'steps_after_injection', 'steps',
                             'no_injection', 'weight_distance', 'cosine_similarity'})
HPARAM_METRICS = ('valid/score', 'eval/mse', 'eval/original_fraction')


class TrainingError(errors.Error, RuntimeError):
  """A run that cannot start or go on (bad workdir, a diverged loss)."""


class DivergedError(TrainingError):
  """The loss or a gradient became NaN or infinite; the last good checkpoint is kept."""
  exit_code = 3

  def __str__(self):
    return f'training diverged: {super().__str__()}'


class Interrupted(TrainingError):
  """The run was interrupted (Ctrl-C); its checkpoints are kept and the same command resumes."""
  exit_code = 130


def grid_side(config):
  conv = conv_lib.get_convention(config.convention)
  return config.grid_size or conv.grid_size


class Trainer:
  """Trains what `config` describes in `workdir`; `run()` does everything and resumes."""

  def __init__(self, config, workdir, log=print, strategy=None):
    config_lib.validate(config)
    self.config = c = config
    self.workdir = pathlib.Path(workdir)
    self.log = log
    self.strategy = strategy or tf.distribute.get_strategy()
    distribute.check_batch(c.batch_size, self.strategy)
    grid = grid_side(c)
    channels = layout.multi_channels(2) if c.kind == 'adversary' else layout.CHANNEL_N
    limits.check(limits.rollout_bytes(c.batch_size, grid, channels, kept_states=c.pool_size,
                                      steps_kept=c.rollout_max),
                 f'training with batch_size={c.batch_size}, pool_size={c.pool_size} and '
                 f'{c.rollout_max}-step rollouts on a {grid}x{grid} grid',
                 'lower batch_size, rollout_max or pool_size (--set=...)')
    self._check_workdir()
    self.convention = conv_lib.get_convention(c.convention)
    self.grid = grid_side(c)
    self.is_adversary = c.kind == 'adversary'
    # The rules and the optimizer are replicated; the pool, step and RNG live on the host side
    # of the step (cross-replica), where the whole batch is prepared.
    with self.strategy.scope():
      self._build_models()
    self.target_np = targets.build_target(c.target, self.convention, self.grid,
                                          original=self.original, fire_rate=c.fire_rate)
    self.target = tf.constant(self.target_np)
    if self.is_adversary:
      self._check_injection_fits()
    # Cells outside the target's shape (for the optional overgrowth penalty).
    self.outside = tf.constant((self.target_np[..., 3] <= 0.0).astype(np.float32))
    self.rng = tf.random.Generator.from_seed(c.seed)
    self.pool = (pool_lib.SamplePool(c.pool_size, [self.grid, self.grid, self.channels])
                 if c.pool_size else None)
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    # The weights with the best validation score so far (eval_every), checkpointed with the run
    # so that a resumed run still knows them.
    self.best = _BestWeights(_rule_vars(self.trainee))
    # Training wall time over every session of the run (evaluation and export excluded).
    self.wall_s = tf.Variable(0.0, dtype=tf.float64, trainable=False, name='wall_s')
    items = dict(step=self.step, trainee=self.trainee, optimizer=self.optimizer, rng=self.rng)
    if self.pool is not None:
      items['pool'] = self.pool
    # What every checkpoint holds; the later additions may be missing from a run's older
    # checkpoints (they then keep their initial values).
    self._core_checkpoint = tf.train.Checkpoint(**items)
    self.checkpoint = tf.train.Checkpoint(**items, best=self.best, wall_s=self.wall_s)
    self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.workdir / 'checkpoints'),
                                              max_to_keep=c.keep_checkpoints)
    # One traced step per stage (see `pretrain_steps`): they differ in the injection of fresh
    # samples (pre-training: every cell the adversary's, so N_old is 0 by itself).
    self._step_fns = {p: tf.function(functools.partial(self._train_step_impl, pretrain=p))
                      for p in (False, True)}
    self._fresh_fns = {p: tf.function(functools.partial(self._fresh, pretrain=p))
                       for p in (False, True)}

  # ------------------------------------------------------------------------------------------
  # Setup.

  def _build_models(self):
    """The original (frozen), the trainee and the optimizer (under the strategy's scope)."""
    c = self.config
    if self.is_adversary:
      self.original = hub.load(c.original, self.convention.name, precision=c.precision)
      self.trainee = model_lib.CAModel(convention=self.convention, fire_rate=c.fire_rate,
                                       init_seed=c.seed, name='adversary',
                                       precision=c.precision)
      if c.adversary_init == 'copy':
        self.trainee.set_rule_weights(self.original.get_rule_weights(), source=c.original)
      elif c.adversary_init.startswith('from:'):
        start = c.adversary_init[len('from:'):]
        self.trainee.set_rule_weights(hub.load(start, self.convention.name).get_rule_weights(),
                                      source=start)
      self.net = multi.MultiNCA([self.original, self.trainee])
      self.channels = layout.multi_channels(2)
      self.injection = inj.parse_injection(c.injection)
      self.pretrain_injection = inj.parse_injection('spray:1.0')  # every cell the adversary's
      # The original alone grows fresh samples (the adversary has no cells before injection).
      self.grower = multi.MultiNCA([self.original])
      self.w_orig = metrics.flat_weights(self.original)
    else:
      self.original = None
      self.trainee = model_lib.CAModel(convention=self.convention, fire_rate=c.fire_rate,
                                       init_seed=c.seed, name='nca', precision=c.precision)
      self.net = self.trainee
      self.channels = layout.CHANNEL_N
    self.optimizer = keras.optimizers.Adam(schedules.learning_rate(c))
    self.optimizer.build(_rule_vars(self.trainee))
    # Fire-mask columns per step: one per rule of the net being rolled out.
    self.noise_columns = 2 if self.is_adversary else 1

  def _check_injection_fits(self):
    """Refuses, before anything is trained, a square that fits inside no organism at the
    injection step (training would run with no adversary at all): grows 2 organisms."""
    c = self.config
    if self.injection['kind'] != 'square':
      return
    x, _ = rollout.grow(self.grower, c.inject_min, batch=2, size=self.grid, seed=c.seed,
                        keep_every=0, fire_rate=c.fire_rate)
    x = tf.concat([x, tf.zeros_like(x[..., :1])], -1)
    side = self.injection['side']
    if not bool(tf.reduce_any(inj.square_centres_available(x, side, self.convention.padding))):
      alive = int(tf.reduce_sum(tf.cast(metrics.alive_cells(x), tf.int32))) // 2
      raise TrainingError(
          f'injection {c.injection}: a {side}x{side} square fits inside no organism of '
          f'{c.original} at step {c.inject_min} ({alive} mature cells); use a smaller square '
          '(square:2) or a spray (spray:0.1)')

  def _check_workdir(self):
    """Refuses a workdir whose config.json disagrees with this config (before touching it)."""
    path = self.workdir / 'config.json'
    if self.workdir.exists() and not self.workdir.is_dir():
      raise TrainingError(f'--workdir {self.workdir} exists and is not a directory')
    if not path.exists():
      return
    try:
      old = json.loads(path.read_text(encoding='utf-8'))
    except ValueError as e:
      raise TrainingError(f'{path} is not valid JSON ({e}); use another --workdir') from None
    new = json.loads(json.dumps(self.config.to_dict()))
    # A field added after the run started is absent from its config.json: it ran with the
    # field's default.
    defaults = json.loads(json.dumps({f.name: f.default for f in
                                      dataclasses.fields(config_lib.TrainConfig)}))
    diff = sorted(k for k in set(old) | set(new)
                  if k not in config_lib.RESUMABLE_CHANGES
                  and old.get(k, defaults.get(k)) != new.get(k))
    if diff:
      raise TrainingError(
          f'{self.workdir} holds a run with a different config (fields: {", ".join(diff)}); '
          'resume it with the same config, or pass a new --workdir')

  # ------------------------------------------------------------------------------------------
  # Fresh samples, rollouts and the train step (device only).

  def _pretraining(self, step):
    """Whether train step `step` (0-based) belongs to the pre-training stage."""
    return self.is_adversary and step < self.config.pretrain_steps

  def _train_step(self):
    """One train step of the current stage (see `_train_step_impl`)."""
    return self._step_fns[self._pretraining(int(self.step.numpy()))]()

  def _fresh(self, n, pretrain=False):
    """`n` fresh samples `[n, H, W, C]`: a seed (nca) or a grown, injected organism (while
    pre-training, every cell of it handed to the adversary)."""
    if not self.is_adversary:
      return self.trainee.seed(n, self.grid)
    c = self.config
    x = self.grower.seed(n, self.grid)
    grow = self.rng.uniform([], c.inject_min, c.inject_max + 1, tf.int32)
    for _ in tf.range(grow):
      x = self.grower(x, fire_rate=c.fire_rate, rng=self.rng)
    x = tf.concat([x, tf.zeros_like(x[..., :1])], -1)
    spec = self.pretrain_injection if pretrain else self.injection
    mask = inj.injection_mask(x, spec, self.convention.padding, self.rng)
    return inj.inject(x, mask)

  def _weight_distance(self):
    """d(w_adv, w_orig) = sqrt(mean((w_adv - w_orig)^2)), differentiable at 0."""
    return tf.sqrt(tf.reduce_mean(tf.square(metrics.flat_weights(self.trainee) - self.w_orig))
                   + _SQRT_EPS)

  def _batch(self, pretrain=False):
    """(indices or None, states, ages) of the next batch, replacements and damage applied."""
    c = self.config
    b = c.batch_size
    if self.pool is None:
      return None, self._fresh(b, pretrain), tf.zeros([b], tf.int32)
    idx = self.pool.sample(b, self.rng)
    x, ages, losses = self.pool.gather(idx)
    score = losses
    if self.is_adversary:
      # Samples past max_age go first: the pool keeps revisiting the takeover itself.
      score = tf.where(ages > c.max_age, tf.fill([b], np.float32(np.inf)), losses)
    order = tf.argsort(score, direction='DESCENDING')
    idx, x, ages = tf.gather(idx, order), tf.gather(x, order), tf.gather(ages, order)
    r = c.replace_worst
    if r:
      fresh, fresh_ages = self._fresh(r, pretrain), tf.zeros([r], tf.int32)
      if c.replace_policy == 'expired':
        # The expired come first in `order`; the others keep their state and age.
        expired = ages[:r] > c.max_age
        fresh = tf.where(expired[:, None, None, None], fresh, x[:r])
        fresh_ages = tf.where(expired, fresh_ages, ages[:r])
      x = tf.concat([fresh, x[r:]], 0)
      ages = tf.concat([fresh_ages, ages[r:]], 0)
    if c.damage_n:
      keep = pool_lib.circle_damage(tf.shape(x[-c.damage_n:]), self.rng)
      x = tf.concat([x[:-c.damage_n], x[-c.damage_n:] * keep], 0)
    return idx, x, ages

  def _rollout(self, x, noise):
    """Rolls `x` out `T` steps firing by `noise` `[T, B, H, W, rules]`; returns (final state,
    per-step `[T, B]` L_target and l2 N_old, or None for a single NCA)."""
    c = self.config
    steps = tf.shape(noise)[0]
    lt = tf.TensorArray(tf.float32, size=steps)
    lo = tf.TensorArray(tf.float32, size=steps)
    for i in tf.range(steps):
      x = self.net(x, fire_rate=c.fire_rate, noise=noise[i])
      if self.is_adversary:
        lt = lt.write(i, metrics.target_loss(x, self.target))
        old = c.l2 * metrics.old_cells(x)
        if c.l_outside:
          alpha = tf.nn.relu(tf.reduce_sum(x[..., layout.MULTI_ALPHA0:], -1))
          old += c.l_outside * tf.reduce_sum(alpha * self.outside, [1, 2])
        lo = lo.write(i, old)
    if self.is_adversary:
      return x, lt.stack(), lo.stack()
    return x, None, None

  def _sample_losses(self, x, lt, lo, ages):
    """Per-sample `[B]` (total, L_target part, N_old part) of a rollout (see `_rollout`)."""
    c = self.config
    if not self.is_adversary:
      target = tf.reduce_mean(tf.square(x[..., :4] - self.target), [1, 2, 3])
      return target, target, tf.zeros_like(target)
    steps = tf.shape(lt)[0]
    n = ages[None, :] + tf.range(1, steps + 1)[:, None]  # [T, B] age after each step
    w1 = schedules.normalised_weights(n, c.l1_schedule, c.l1_start, c.l1_end, c.l1_width)
    w2 = schedules.normalised_weights(n, c.l2_schedule, c.l2_start, c.l2_end, c.l2_width)
    part_target = c.l1 * tf.reduce_sum(w1 * lt, 0)
    part_old = tf.reduce_sum(w2 * lo, 0)  # l2 N_old (+ l_outside overgrowth)
    return part_target + part_old, part_target, part_old

  def _replica_step(self, x0, ages, noise):
    """One replica's share of a train step: its slice of the batch, rolled out under the tape.

    Args:
      x0: the whole batch `[B, H, W, C]`; ages `[B]`; noise `[T, B, H, W, rules]`.

    Returns:
      A dict: this replica's gradients (of its share of the batch loss: the shares sum to the
      loss), loss share, final states `[B / replicas, ...]` and per-sample losses.
    """
    c = self.config
    ctx = tf.distribute.get_replica_context()
    replicas = ctx.num_replicas_in_sync
    b = c.batch_size // replicas
    start = ctx.replica_id_in_sync_group * b
    x0 = tf.ensure_shape(x0[start:start + b], [b, self.grid, self.grid, self.channels])
    ages = ages[start:start + b]
    noise = noise[:, start:start + b]
    variables = _rule_vars(self.trainee)  # the adversary only: the original stays frozen
    with tf.GradientTape() as tape:
      x, lt, lo = self._rollout(x0, noise)
      per_sample, part_target, part_old = self._sample_losses(x, lt, lo, ages)
      # Outliers are judged against the mean of the whole batch, over every replica.
      keep = tf.ones_like(per_sample)
      if c.outlier_factor:
        total = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                               tf.stop_gradient(tf.reduce_sum(per_sample)))
        keep = tf.cast(tf.stop_gradient(per_sample) <= c.outlier_factor * total / c.batch_size,
                       tf.float32)
      kept = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(keep))
      loss = tf.reduce_sum(keep * per_sample) / tf.maximum(kept, 1.0)
      part_l3 = tf.constant(0.0)
      if self.is_adversary and c.l3:
        part_l3 = c.l3 * self._weight_distance()
        loss += part_l3 / replicas
    return {'grads': tape.gradient(loss, variables), 'loss': loss, 'x': x,
            'per_sample': per_sample, 'target': part_target, 'old': part_old, 'keep': keep,
            'l3': part_l3}

  def _train_step_impl(self, pretrain=False):
    c = self.config
    idx, x0, ages = self._batch(pretrain)
    steps = self.rng.uniform([], c.rollout_min, c.rollout_max + 1, tf.int32)
    # Every random number of the rollout is drawn here for the whole batch, so a batch split
    # over replicas fires exactly as it would on one device.
    noise = self.rng.uniform(tf.concat([[steps], tf.shape(x0)[:3], [self.noise_columns]], 0))
    r = self.strategy.run(self._replica_step, args=(x0, ages, noise))
    total = lambda v: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
    whole = lambda v: self.strategy.gather(v, axis=0)
    grads = [total(g) for g in r['grads']]
    loss = total(r['loss'])
    x, per_sample, keep = whole(r['x']), whole(r['per_sample']), whole(r['keep'])
    part_target, part_old = whole(r['target']), whole(r['old'])
    part_l3 = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, r['l3'], axis=None)
    variables = _rule_vars(self.trainee)
    grad_norm = tf.linalg.global_norm(grads)
    ok = tf.logical_and(tf.math.is_finite(loss), tf.math.is_finite(grad_norm))
    if c.grad_norm:
      grads = [g / (tf.norm(g) + _GRAD_EPS) for g in grads]
    lr = self.optimizer.learning_rate
    if ok:
      self.optimizer.apply_gradients(zip(grads, variables))
      if self.pool is not None:
        self.pool.commit(idx, x, ages + steps, per_sample)
      self.step.assign_add(1)
    out = {
        'loss': loss, 'loss/target': tf.reduce_mean(part_target),
        'loss/old': tf.reduce_mean(part_old), 'loss/l3': part_l3,
        'loss/max_sample': tf.reduce_max(per_sample),
        'outliers_dropped': tf.reduce_sum(1.0 - keep),
        'grad_norm': grad_norm, 'ok': ok, 'rollout_steps': steps,
        'lr': lr if isinstance(lr, tf.Tensor) else tf.convert_to_tensor(lr),
        'mean_age': tf.reduce_mean(tf.cast(ages + steps, tf.float32)),
    }
    if self.is_adversary:
      out['original_fraction'] = tf.reduce_mean(metrics.original_fraction(x))
      out['alive'] = tf.reduce_mean(metrics.alive_cells(x))
      out['weight_distance'] = metrics.weight_distance(self.trainee, self.original)
      out['cosine_similarity'] = metrics.cosine_similarity(self.trainee, self.original)
    else:
      out['alive'] = tf.reduce_mean(tf.reduce_sum(
          tf.cast(x[..., layout.ALPHA] > 0.1, tf.float32), [1, 2]))
    out['x'] = x
    return out

  # ------------------------------------------------------------------------------------------
  # The run.

  def _fill_pool(self, pretrain=False):
    chunk = max(1, min(16, self.pool.size))
    for start in range(0, self.pool.size, chunk):
      n = min(chunk, self.pool.size - start)
      self.pool.fill(self._fresh_fns[pretrain](n), start)

  def _enter_stage(self):
    """Refills the pool with the config's injections before the first step after
    pre-training. Only then does the pool still hold pre-training samples: every checkpoint up
    to that step was saved during pre-training, every later one after the refill."""
    c = self.config
    if self.pool is None or not c.pretrain_steps or int(self.step.numpy()) != c.pretrain_steps:
      return
    t = time.time()
    self._fill_pool()
    self.log(f'pre-training done at step {int(self.step.numpy())}: refilled the pool with '
             f'{self.pool.size} fresh {self.config.injection} injections in '
             f'{time.time() - t:.1f}s; training the takeover')

  def _checkpoints_on_disk(self):
    """Checkpoint prefixes in checkpoints/, newest first, from the files themselves: a deleted
    or stale state file must not hide them."""
    found = {}
    for index in (self.workdir / 'checkpoints').glob('ckpt-*.index'):
      m = re.fullmatch(r'ckpt-(\d+)\.index', index.name)
      if m:
        found[int(m.group(1))] = str(index.parent / f'ckpt-{m.group(1)}')
    return [found[n] for n in sorted(found, reverse=True)]

  def _set_aside(self, prefix):
    """Renames an unreadable checkpoint's files to `corrupt-ckpt-N.*` (kept, never deleted)."""
    path = pathlib.Path(prefix)
    for f in path.parent.glob(path.name + '.*'):
      os.replace(f, f.with_name('corrupt-' + f.name))

  def restore_or_init(self):
    """Restores the newest readable checkpoint; otherwise fills the pool. Returns its path.

    A missing state file (`checkpoints/checkpoint`) is rebuilt from the checkpoints on disk;
    an unreadable newest checkpoint is set aside (`corrupt-ckpt-N.*`) and the one before is
    used; the log says both. Checkpoints that exist are never trained over from step 0.

    Raises:
      TrainingError: checkpoints exist and none of them can be read.
    """
    d = self.workdir / 'checkpoints'
    on_disk = self._checkpoints_on_disk()
    latest = self.manager.latest_checkpoint
    if on_disk and latest != on_disk[0]:
      self.log(f'the checkpoint state file {d / "checkpoint"} is missing or stale; recovering '
               f'from the checkpoints on disk ({", ".join(pathlib.Path(p).name for p in on_disk)})')
    for i, path in enumerate(on_disk):
      reason = _unreadable(path)
      if reason:
        self.log(f'checkpoint {path} is unreadable ({reason}); set aside as corrupt-'
                 f'{pathlib.Path(path).name}.*, trying the one before')
        self._set_aside(path)
        continue
      # Read in full above (every checksum checked), so a restore cannot fail half-way.
      self._core_checkpoint.restore(path).assert_existing_objects_matched().expect_partial()
      self.checkpoint.restore(path).expect_partial()
      good = on_disk[i:]
      if latest != path or i:
        # The manager must know every checkpoint kept, so that it rotates them and never
        # loses track of one.
        tf.compat.v1.train.update_checkpoint_state(
            str(d), path, all_model_checkpoint_paths=list(reversed(good)))
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(d),
                                                  max_to_keep=self.config.keep_checkpoints)
      self.log(f'resumed from {path} at step {int(self.step.numpy())}')
      return path
    if on_disk:
      raise TrainingError(f'none of the checkpoints in {d} can be read; move the directory '
                          'aside to start over, or pass a new --workdir')
    if self.pool is not None:
      t = time.time()
      pretrain = self._pretraining(0)
      self._fill_pool(pretrain)
      self.log(f'filled the pool with {self.pool.size} fresh samples in {time.time() - t:.1f}s'
               + (f' (pre-training for {self.config.pretrain_steps} steps: every cell the '
                  "adversary's, no takeover)" if pretrain else ''))
    return None

  def run(self):
    """Trains to `config.steps` (resuming), evaluates, exports; returns the metrics dict.

    Raises:
      Interrupted: on Ctrl-C (KeyboardInterrupt); the checkpoints are kept.
      DivergedError: a NaN or infinite loss or gradient.
    """
    try:
      return self._run()
    except KeyboardInterrupt:
      last = self.manager.latest_checkpoint
      raise Interrupted(
          f'interrupted at step {int(self.step.numpy())}; rerun the same command to resume '
          f'(from {pathlib.Path(last).name if last else "the start: no checkpoint yet"})'
      ) from None

  def _run(self):
    c = self.config
    self.workdir.mkdir(parents=True, exist_ok=True)
    io.write_json(self.workdir / 'config.json', c.to_dict())
    record_provenance(self.workdir)
    removed = io.remove_temporaries(self.workdir, self.workdir / 'export',
                                    self.workdir / 'checkpoints')
    if removed:
      self.log(f'removed {len(removed)} temporary file(s) left by an interrupted run: '
               + ', '.join(p.name for p in removed[:4]) + (' ...' if len(removed) > 4 else ''))
    self.restore_or_init()
    logdir = self.tensorboard_dir
    start_step = int(self.step.numpy())
    if start_step:  # what a killed run logged after its last checkpoint is logged again
      _drop_events_after(logdir, start_step)
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
      hp.hparams_config(hparams=[hp.HParam(k) for k in _hparams(c)],
                        metrics=[hp.Metric(m) for m in HPARAM_METRICS])
      hp.hparams(_hparams(c), trial_id=c.name or 'run')
    t0 = time.time()
    wall_before = float(self.wall_s.numpy())
    recent = []
    last_mean = None  # the mean loss of the last log window (stop_loss's criterion)
    last_ckpt = start_step
    stopped_early = False
    out = None
    while int(self.step.numpy()) < c.steps:
      self._enter_stage()
      step_before = int(self.step.numpy())
      out = self._train_step()
      loss = float(out['loss'].numpy())
      if not bool(out['ok'].numpy()):
        kept = self.manager.latest_checkpoint or 'none (no checkpoint yet)'
        raise DivergedError(
            f'the loss became {loss} (gradient norm {float(out["grad_norm"].numpy())}) at '
            f'step {step_before}; training stopped without applying it. The last good '
            f'checkpoint is {kept}. Rerun the same command with a lower learning rate, e.g. '
            f'--set=lr={c.lr / 2:g} (it scales the whole schedule, and the run resumes from '
            'that checkpoint)' + ('' if c.grad_norm else ', or with --set=grad_norm=true') +
            '.')
      step = step_before + 1
      recent.append(loss)
      if step % c.summary_every == 0 or step == c.steps:
        with writer.as_default():
          for k, tag in TB_TAGS.items():
            if k in out:
              v = 1.0 - out[k] if k == 'cosine_similarity' else out[k]
              tf.summary.scalar(tag if self.is_adversary or k != 'alive' else 'train/alive', v,
                                step=step)
      if step % c.image_every == 0 or step == c.steps:
        with writer.as_default():
          tf.summary.image('train/pool' if self.pool is not None else 'train/batch',
                           self._strip(self.pool.states[:8] if self.pool is not None
                                       else out['x'])[None], step=step)
      if step % c.log_every == 0 or step == c.steps:
        done = step - start_step
        rate = (time.time() - t0) / max(done, 1)
        mean = last_mean = float(np.mean(recent))
        parts = f'loss {mean:.5f} (target {float(out["loss/target"]):.5f}'
        if self.is_adversary:
          parts += (f', old {float(out["loss/old"]):.4f}, orig. fraction '
                    f'{float(out["original_fraction"]):.3f}')
        parts += ')'
        self.log(f'step {step}/{c.steps}: {parts}, {rate:.2f} s/step, ETA '
                 f'{_hms(rate * (c.steps - step))}')
        if c.stop_loss and mean < c.stop_loss:
          self.log(f'mean loss {mean:.5f} < stop_loss {c.stop_loss}: stopping at step {step}')
          stopped_early = True
        recent = []
      # Pre-training weights are not validated: they have not learnt the takeover yet.
      if (c.eval_every and (step % c.eval_every == 0 or step == c.steps or stopped_early)
          and not self._pretraining(step - 1)):
        self.validate(writer, step)
      if step % c.checkpoint_every == 0 or step == c.steps or stopped_early:
        self.wall_s.assign(wall_before + time.time() - t0)
        self.manager.save(checkpoint_number=step)
        last_ckpt = step
      if stopped_early:
        break
    wall = time.time() - t0
    if last_ckpt != int(self.step.numpy()):
      self.wall_s.assign(wall_before + wall)
      self.manager.save(checkpoint_number=int(self.step.numpy()))
    result = self.finish(writer, wall_s=wall, steps_this_session=int(self.step.numpy()) -
                         start_step, stopped_early=stopped_early, final_loss=last_mean)
    writer.flush()
    writer.close()
    return result

  @property
  def tensorboard_dir(self):
    """`<workdir>/tensorboard/<config name>`: TensorBoard names the run after the config."""
    return self.workdir / 'tensorboard' / (self.config.name or 'run')

  def _strip(self, states):
    """Organisms above, cell masks below (adversary), as one float image `[h, w, 3]`."""
    states = states.numpy() if hasattr(states, 'numpy') else np.asarray(states)
    rows = [render.state_to_rgb(states, self.convention)]
    if self.is_adversary:
      rows.append(render.cell_mask_rgb(states))
    images = np.concatenate(rows, 0)
    return render.tile(render.zoom(images, 2), cols=len(states), pad=2).astype(np.float32)

  # ------------------------------------------------------------------------------------------
  # Evaluation and export.

  def evaluate(self, seed=None):
    """(metrics, strip image, recorded steps) of an evaluation of the trainee on fresh seeds
    (the generator seeded with `seed`, default `config.eval_seed`)."""
    c = self.config
    seed = c.eval_seed if seed is None else seed
    if self.is_adversary:
      m, states, steps = self._evaluate_adversary(self.trainee, seed)
    else:
      m, states, steps = evaluate.evaluate_nca(
          self.trainee, self.target, self.grid, steps=c.eval_steps, seeds=c.eval_seeds,
          seed=seed, fire_rate=c.fire_rate)
    strip = render.evolution_strip(states, self.convention, zoom_factor=2,
                                   with_mask=self.is_adversary, steps=steps)
    return m, strip, steps

  def compare(self):
    """The published adversary `config.compare_with` under the same evaluation, or None."""
    c = self.config
    if not (self.is_adversary and c.compare_with):
      return None
    m, _, _ = self._evaluate_adversary(hub.load(c.compare_with, self.convention.name))
    m['name'] = c.compare_with
    return m

  def validation_score(self, m):
    """The objective at the evaluation's last step, from evaluation metrics `m`: the MSE to
    the target (nca), `l1 MSE + l2 N_old` with N_old counted in mature original cells
    (adversary: a lower MSE does not make up for an unfinished takeover)."""
    c = self.config
    if not self.is_adversary:
      return m['mse']
    return c.l1 * m['mse'] + c.l2 * m['original_fraction'] * m['alive']

  def validate(self, writer, step):
    """The evaluation on the validation seeds (`eval_seed + 1`): valid/* scalars, and the
    weights with the best `validation_score` so far kept in `self.best`. Returns the metrics
    with the score."""
    c = self.config
    t = time.time()
    m, _, _ = self.evaluate(seed=c.eval_seed + 1)
    m['score'] = score = float(self.validation_score(m))
    improved = bool(np.isfinite(score)) and score < float(self.best.score.numpy())
    if improved:
      self.best.keep(_rule_vars(self.trainee), score, step)
    with writer.as_default():
      for k, v in m.items():
        if isinstance(v, (int, float)) and k not in _EVAL_CONSTANTS:
          tf.summary.scalar(f'valid/{k}', v, step=step)
      tf.summary.scalar('valid/best_score', self.best.score, step=step)
    extra = (f', original fraction {m["original_fraction"]:.3f}' if self.is_adversary else '')
    self.log(f'validation at step {step} ({c.eval_seeds} seeds, {c.eval_steps} steps, '
             f'{time.time() - t:.0f}s): score {score:.5f}, mse {m["mse"]:.5f}{extra}, alive '
             f'{m["alive"]:.0f}; best {float(self.best.score.numpy()):.5f} at step '
             f'{int(self.best.step.numpy())}' + (' (new best)' if improved else ''))
    return m

  def _evaluate_adversary(self, adversary, seed=None):
    """`evaluate.evaluate_adversary` of `adversary` under this run's protocol, plus its weight
    distance and cosine similarity to the original."""
    c = self.config
    m, states, steps = evaluate.evaluate_adversary(
        self.original, adversary, self.injection, self.target_np, self.grid,
        inject_at=c.inject_min, steps=c.eval_steps, seeds=c.eval_seeds,
        seed=c.eval_seed if seed is None else seed, fire_rate=c.fire_rate)
    m['weight_distance'] = float(metrics.weight_distance(adversary, self.original))
    m['cosine_similarity'] = float(metrics.cosine_similarity(adversary, self.original))
    return m, states, steps

  def export(self, weights_step=None):
    """Writes export/: the SavedModel, the trainee's .weights.h5 (and WebGL JSON). Returns
    {format: path}. `weights_step`: the step the trainee's weights come from (default the
    current step)."""
    c = self.config
    d = self.workdir / 'export'
    step = int(self.step.numpy())
    info = {'config': c.name, 'kind': c.kind, 'original': c.original, 'target': c.target,
            'injection': c.injection if self.is_adversary else None,
            'step': step if weights_step is None else int(weights_step), 'run_step': step}
    rules = [self.original, self.trainee] if self.is_adversary else [self.trainee]
    paths = {'saved_model': export.save_saved_model(rules, d / 'saved_model', info)}
    name = 'adversary' if self.is_adversary else 'model'
    paths['weights_h5'] = weights_file.save(self.trainee, d / f'{name}.weights.h5',
                                            config=c.name, step=info['step'])
    if not self.is_adversary:
      paths['webgl_json'] = export.save_webgl_json(self.trainee, d / f'{name}.webgl.json')
    return {k: str(v) for k, v in paths.items()}

  def finish(self, writer, wall_s=0.0, steps_this_session=0, stopped_early=False,
             final_loss=None):
    """Evaluates, compares, exports, registers and writes metrics.json.

    With `eval_every` and `keep_best`, the trainee takes the best validated weights first (the
    checkpoints keep the last ones, so a resumed run goes on from where it stopped).
    """
    c = self.config
    t = time.time()
    step = int(self.step.numpy())
    best = None
    if c.eval_every and int(self.best.step.numpy()) >= 0:
      best = {'step': int(self.best.step.numpy()),
              'valid_score': float(self.best.score.numpy()),
              'last_step': step, 'used': bool(c.keep_best)}
      if c.keep_best:
        for v, b in zip(_rule_vars(self.trainee), self.best.weights):
          v.assign(b)
        self.log(f'using the best validated weights (step {best["step"]}, validation score '
                 f'{best["valid_score"]:.5f}) for the evaluation and the export')
    m, strip, _ = self.evaluate()
    with writer.as_default():
      tf.summary.image('eval/strip', strip[None].astype(np.float32), step=step)
      for k, v in m.items():
        if isinstance(v, (int, float)) and k not in _EVAL_CONSTANTS:
          tf.summary.scalar(f'eval/{k}', v, step=step)
    reference = self.compare()
    paths = self.export(best['step'] if best and best['used'] else step)
    doc = {'config': c.name, 'kind': c.kind, 'steps': step, 'stopped_early': stopped_early,
           'final_train_loss': final_loss,
           'best': best,
           'wall_s_this_session': wall_s, 'steps_this_session': steps_this_session,
           'wall_s_total': float(self.wall_s.numpy()),
           's_per_step': wall_s / max(steps_this_session, 1), 'eval': m,
           'reference': reference, 'export': paths, 'eval_wall_s': time.time() - t}
    if c.register:
      doc['registered'] = self.register(c.register, paths['weights_h5'])
    io.write_json(self.workdir / 'metrics.json', doc)
    line = ', '.join(f'{k} {v:.4f}' for k, v in m.items()
                     if isinstance(v, float) and not k.endswith('_std'))
    self.log(f'final evaluation ({c.eval_seeds} seeds): {line}')
    self.log(f'outputs: {self.workdir / "metrics.json"}, {self.workdir / "export"}; '
             f'TensorBoard: tensorboard --logdir {self.workdir / "tensorboard"}')
    if reference is not None:
      self.log('published ' + c.compare_with + ': ' + ', '.join(
          f'{k} {v:.4f}' for k, v in reference.items()
          if isinstance(v, float) and not k.endswith('_std')))
    return doc

  def register(self, name, weights):
    """Registers the trained NCA in <workdir>/registered.json (and $TF_MULTINCA_LOCAL_MANIFEST)."""
    c = self.config
    manifests = [self.workdir / registry.WORKDIR_MANIFEST] + registry.default_manifests()
    for m in manifests:
      registry.register(name, weights, convention=self.convention.name,
                        role='persistent' if c.pool_size and not c.damage_n else
                        ('regenerating' if c.damage_n else 'growing'),
                        target=c.target, manifest=m, config=c.name,
                        workdir=str(self.workdir.resolve()))
    self.log(f'registered {name} in {", ".join(str(m) for m in manifests)}')
    return [str(m) for m in manifests]


class _BestWeights(tf.Module):
  """A copy of the trainee's rule variables with their validation score and step."""

  def __init__(self, variables):
    super().__init__(name='best')
    self.weights = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name=f'w{i}')
                    for i, v in enumerate(variables)]
    self.score = tf.Variable(np.inf, dtype=tf.float32, trainable=False, name='score')
    self.step = tf.Variable(-1, dtype=tf.int64, trainable=False, name='step')

  def keep(self, variables, score, step):
    for b, v in zip(self.weights, variables):
      b.assign(v)
    self.score.assign(score)
    self.step.assign(step)


def _rule_vars(ca):
  """A CAModel's rule variables in `model.WEIGHT_NAMES` order."""
  return [ca.conv1.kernel, ca.conv1.bias, ca.conv2.kernel, ca.conv2.bias]


def _unreadable(prefix):
  """Why the checkpoint `prefix` cannot be read in full (a truncated file, a checksum), or ''."""
  try:
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
  except (tf.errors.OpError, ValueError) as e:
    text = str(e).strip()
    return text.splitlines()[-1][:160] if text else type(e).__name__
  return ''


def code_commit():
  """The git commit of this library's source ('<sha>', '<sha>-dirty' with uncommitted changes
  to it), or 'unknown' outside a git checkout."""
  src = pathlib.Path(__file__).resolve().parents[2]
  try:
    sha = subprocess.run(['git', '-C', str(src), 'rev-parse', 'HEAD'], capture_output=True,
                         text=True, timeout=10, check=True).stdout.strip()
    dirty = subprocess.run(['git', '-C', str(src), 'status', '--porcelain', '--', 'tf_multinca'],
                           capture_output=True, text=True, timeout=10, check=True).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return 'unknown'
  return sha + ('-dirty' if dirty else '')


def record_provenance(workdir):
  """Adds this session's code commit to `<workdir>/provenance.json` ({"commits": [...]})."""
  path = pathlib.Path(workdir) / PROVENANCE_FILE
  doc = read_provenance(workdir)
  commit = code_commit()
  if commit not in doc['commits']:
    doc['commits'].append(commit)
    io.write_json(path, doc)
  return doc


def read_provenance(workdir):
  """`<workdir>/provenance.json` as a dict ({"commits": []} when there is none)."""
  path = pathlib.Path(workdir) / PROVENANCE_FILE
  try:
    doc = json.loads(path.read_text(encoding='utf-8'))
    if isinstance(doc, dict) and isinstance(doc.get('commits'), list):
      return doc
  except (OSError, ValueError):
    pass
  return {'commits': []}


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


def _hparams(c):
  out = {}
  for name in varying_fields(c.kind):
    v = getattr(c, name)
    out[name] = v if isinstance(v, (bool, int, float, str)) else ','.join(str(x) for x in v)
  return out


def _drop_events_after(logdir, step):
  """Rewrites the event files of `logdir` without the summaries of steps after `step` (what a
  killed run logged past its last checkpoint, which the resumed run logs again), so TensorBoard
  shows no duplicate points. Returns the number of events dropped. (TensorBoard's SessionLog
  purge does not cover TF2 summaries.)"""
  dropped = 0
  for f in sorted(pathlib.Path(logdir).glob('events.out.tfevents.*')):
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

    io.write_file(f, write)
    dropped += late
  return dropped


def _hms(seconds):
  if not math.isfinite(seconds):
    return '?'
  seconds = int(seconds)
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


def train(config, workdir, log=print, strategy=None):
  """Trains (or resumes) `config` in `workdir`; returns the final metrics dict.

  `strategy`: a `tf.distribute.Strategy` (see `distribute.make_strategy`); None for the current
  one (one device unless called inside a strategy's scope).
  """
  return Trainer(config, workdir, log=log, strategy=strategy).run()
