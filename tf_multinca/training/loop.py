"""The one training loop: adversaries of a Multiple NCA (the paper) and single NCAs (Distill).

`Trainer(config, workdir).run()` builds everything from a `TrainConfig`, resumes from the last
checkpoint in `workdir` if there is one, trains with a custom loop (one `tf.function` per train
step, everything on the device), logs to TensorBoard, checkpoints, and at the end evaluates on
fresh seeds and exports. The units it wires together: `workdir` (config check, provenance,
checkpoints and their recovery), `samples` (fresh samples, the pool policy), `step` (the train
step), `evaluate` (the run's evaluations), `summaries` (TensorBoard). Workdir layout::

    config.json          the config (a resumed run must match it, see base.RESUMABLE_CHANGES)
    provenance.json      the code commits the run was trained at
    checkpoints/         tf.train.CheckpointManager: trainee, optimizer, pool, step, RNG, best
    tensorboard/<name>/  scalars, image strips, hparams
    metrics.json         the final evaluation (written atomically)
    export/              saved_model/, <trainee>.weights.h5 (and nca: WebGL JSON)
    .lock                while a run writes the workdir: its pid, host and start time

Faults: SIGTERM (a scheduler's preemption) or Ctrl-C stops the run at the next step boundary
with a checkpoint of that step (`Preempted`, exit 143; `Interrupted`, 130); a full file system
is one line naming the file, the space left and the checkpoint a rerun resumes from
(`DiskFullError`, 5); one process writes a workdir at a time (`workdir.WorkdirLock`; a second
gets `WorkdirInUse`, 2).
"""

import contextlib
import json
import pathlib
import shutil
import signal
import tempfile
import time

import numpy as np
import tensorflow as tf

from tf_multinca import conventions as conv_lib
from tf_multinca import fileio as io
from tf_multinca import hub
from tf_multinca import injection as inj
from tf_multinca import layout
from tf_multinca import limits
from tf_multinca import metrics
from tf_multinca import model as model_lib
from tf_multinca import multi
from tf_multinca import registry
from tf_multinca import rollout
from tf_multinca import saved_model
from tf_multinca import targets
from tf_multinca import text
from tf_multinca import weights_file
from tf_multinca.configs import adversary as adversary_configs
from tf_multinca.configs import base as config_lib
from tf_multinca.pretrained import formats
from tf_multinca.training import distribute
from tf_multinca.training import evaluate
from tf_multinca.training import interrupt
from tf_multinca.training import pool as pool_lib
from tf_multinca.training import samples as samples_lib
from tf_multinca.training import schedules
from tf_multinca.training import step as step_lib
from tf_multinca.training import summaries
from tf_multinca.training import workdir as workdir_lib

keras = tf.keras

# The errors of a run (raised here and by `workdir`).
TrainingError = workdir_lib.TrainingError
DivergedError = workdir_lib.DivergedError
Interrupted = workdir_lib.Interrupted
Preempted = workdir_lib.Preempted
WorkerLostError = workdir_lib.WorkerLostError
DiskFullError = workdir_lib.DiskFullError
WorkdirInUse = workdir_lib.WorkdirInUse
# What a collective raises when a peer of a multi-worker job is gone or times out.
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                tf.errors.CancelledError, tf.errors.AbortedError)
HPARAM_METRICS = summaries.HPARAM_METRICS
read_provenance = workdir_lib.read_provenance


def grid_side(config):
  """The run's grid side: `grid_size`, or the convention's."""
  conv = conv_lib.get_convention(config.convention)
  return config.grid_size or conv.grid_size


def reached_stop(config, is_adversary, m):
  """Whether a validation's metrics `m` (with its 'score', and for an adversary its
  'complete' share) meet the stop criterion (`meets_stop`)."""
  return meets_stop(config, is_adversary, m['score'], complete_takeover(config, is_adversary, m))


def meets_stop(config, is_adversary, score, complete):
  """The stop criterion: a `score` below `config.stop_loss` and, for an adversary, a takeover
  `complete` as `complete_takeover` judges it (in at least `config.stop_complete` of the
  seeds). Always False without `stop_loss`."""
  return bool(config.stop_loss and score < config.stop_loss and (complete or not is_adversary))


def complete_takeover(config, is_adversary, m):
  """Whether a validation's takeover counts as complete for the stop criterion and the best
  weights: an adversary run with `stop_loss` whose validation left no original cell in at
  least `stop_complete` of the seeds. Always False otherwise (nothing to prefer)."""
  return bool(is_adversary and config.stop_loss and m['complete'] >= config.stop_complete)


def better_validation(config, is_adversary, m, score, best_score, best_complete):
  """Whether validation metrics `m` with `score` beat the best so far (`best_score`,
  `best_complete`): a finite, lower score, except that with `stop_loss` a complete takeover
  (`complete_takeover`) beats an incomplete one whatever the scores. The bar counts complete
  takeovers, and the score does not: one original cell left in a seed adds only l2 / seeds."""
  if not np.isfinite(score):
    return False
  complete = complete_takeover(config, is_adversary, m)
  if complete != bool(best_complete):
    return complete
  return score < best_score


class Trainer:
  """Trains what `config` describes in `workdir`; `run()` does everything and resumes."""

  def __init__(self, config, workdir, log=print, strategy=None):
    config_lib.validate(config)
    self.config = c = config
    self.workdir = pathlib.Path(workdir)
    self.log = log
    self.strategy = strategy or tf.distribute.get_strategy()
    distribute.check_batch(c.batch_size, self.strategy)
    # In a multi-worker job only the chief writes the run's files. The other workers train the
    # same steps (their collectives need them) and write their checkpoints and TensorBoard to a
    # temporary directory, removed at the end, as TensorFlow's multi-worker guide does; they
    # resume from the chief's checkpoints (the workdir must be one every host sees).
    self.is_chief = distribute.is_chief(self.strategy)
    self.multi_worker = isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)
    self.task = distribute.task_name(self.strategy)
    self.grid = grid = grid_side(c)
    self.is_adversary = c.kind == 'adversary'
    self.channels = layout.multi_channels(2) if self.is_adversary else layout.CHANNEL_N
    limits.check(limits.rollout_bytes(c.batch_size, grid, self.channels,
                                      kept_states=c.pool_size, steps_kept=c.rollout_max),
                 f'training with batch_size={c.batch_size}, pool_size={c.pool_size} and '
                 f'{c.rollout_max}-step rollouts on a {grid}x{grid} grid',
                 'lower batch_size, rollout_max or pool_size (--set=...)')
    if self.is_adversary:  # the original's recorded convention is the run's (as in a takeover)
      own = hub.describe(c.original).get('convention')
      hub.check_conventions(own, c.convention, f"pass --convention={own} (the adversary's is "
                            "the config's) or an original of the config's convention")
    workdir_lib.check_config(self.workdir, c)
    if self.is_chief:  # a workdir another run writes: stop now, not after the setup (`run`)
      workdir_lib.WorkdirLock(self.workdir).check()
    self.convention = conv_lib.get_convention(c.convention)
    # The rules and the optimizer are replicated; the pool, step and RNG live on the host side
    # of the step (cross-replica), where the whole batch is prepared.
    with self.strategy.scope():
      self._build_models()
    self.target_np = targets.cut_alpha(
        targets.build_target(c.target, self.convention, self.grid, original=self.original,
                             fire_rate=c.fire_rate), c.target_alpha_cut)
    target = tf.constant(self.target_np)
    # Cells outside the target's shape (for the optional overgrowth penalty).
    outside = tf.constant((self.target_np[..., 3] <= 0.0).astype(np.float32))
    self.rng = tf.random.Generator.from_seed(c.seed)
    self.pool = (pool_lib.SamplePool(c.pool_size, [self.grid, self.grid, self.channels])
                 if c.pool_size else None)
    self.samples = samples_lib.Samples(
        c, self.grid, self.rng, self.pool, grower=self.grower,
        seed_model=None if self.is_adversary else self.trainee,
        padding=self.convention.padding)
    if self.is_adversary:
      self._check_injection_fits()
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.train_step_fn = step_lib.TrainStep(
        c, self.net, self.trainee, self.original, target, outside, self.samples,
        self.optimizer, self.step, self.rng, self.strategy, self.grid, self.channels)
    self.evaluator = evaluate.RunEvaluator(c, self.original, self.target_np, self.grid,
                                           self.convention)
    # The weights with the best validation score so far (eval_every), checkpointed with the run
    # so that a resumed run still knows them.
    self.best = workdir_lib.BestWeights(step_lib.rule_vars(self.trainee))
    # The moving average of the rule's weights (weight_average), checkpointed with the run.
    self.average = (workdir_lib.WeightAverage(step_lib.rule_vars(self.trainee),
                                              c.weight_average) if c.weight_average else None)
    # Training wall time over every session of the run (evaluation and export excluded).
    self.wall_s = tf.Variable(0.0, dtype=tf.float64, trainable=False, name='wall_s')
    core = dict(step=self.step, trainee=self.trainee, optimizer=self.optimizer, rng=self.rng)
    if self.pool is not None:
      core['pool'] = self.pool
    # The later additions may be missing from a run's older checkpoints (they then keep their
    # initial values).
    self.outdir = (self.workdir if self.is_chief else
                   pathlib.Path(tempfile.mkdtemp(prefix='tf_multinca_worker_')))
    self.checkpoints = workdir_lib.Checkpoints(self.workdir, core,
                                               dict(best=self.best, wall_s=self.wall_s,
                                                    **({'average': self.average}
                                                       if self.average is not None else {})),
                                               c.keep_checkpoints, log, write_dir=self.outdir)

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
      # The original alone grows fresh samples (the adversary has no cells before injection).
      self.grower = multi.MultiNCA([self.original])
    else:
      self.original = self.grower = None
      self.trainee = model_lib.CAModel(convention=self.convention, fire_rate=c.fire_rate,
                                       init_seed=c.seed, name='nca', precision=c.precision)
      self.net = self.trainee
    self.optimizer = keras.optimizers.Adam(schedules.learning_rate(c))
    self.optimizer.build(step_lib.rule_vars(self.trainee))

  def _check_injection_fits(self):
    """Refuses, before anything is trained, a square that fits inside no organism at the
    injection step (training would run with no adversary at all): grows 2 organisms."""
    c = self.config
    spec = self.samples.injection
    if spec['kind'] != 'square':
      return
    x, _ = rollout.grow(self.grower, c.inject_min, batch=2, size=self.grid, seed=c.seed,
                        keep_every=0, fire_rate=c.fire_rate)
    x = tf.concat([x, tf.zeros_like(x[..., :1])], -1)
    side = spec['side']
    if not bool(tf.reduce_any(inj.square_centres_available(x, side, self.convention.padding))):
      alive = int(tf.reduce_sum(tf.cast(metrics.alive_cells(x), tf.int32))) // 2
      raise TrainingError(
          f'injection {c.injection}: a {side}x{side} square fits inside no organism of '
          f'{c.original} at step {c.inject_min} ({alive} mature cells); use a smaller square '
          '(square:2) or a spray (spray:0.1)')

  # ------------------------------------------------------------------------------------------
  # Stages, checkpoints and the step.

  @property
  def manager(self):
    """The run's `tf.train.CheckpointManager`."""
    return self.checkpoints.manager

  @property
  def checkpoint(self):
    """The `tf.train.Checkpoint` of everything a checkpoint holds."""
    return self.checkpoints.checkpoint

  def _pretraining(self, step):
    """Whether train step `step` (0-based) belongs to the pre-training stage."""
    return self.is_adversary and step < self.config.pretrain_steps

  def train_step(self):
    """One train step of the current stage (`step.TrainStep`): a dict of its outputs."""
    return self.train_step_fn(self._pretraining(int(self.step.numpy())))

  def _enter_stage(self):
    """Refills the pool with the config's injections before the first step after
    pre-training. Only then does the pool still hold pre-training samples: every checkpoint up
    to that step was saved during pre-training, every later one after the refill."""
    c = self.config
    if self.pool is None or not c.pretrain_steps or int(self.step.numpy()) != c.pretrain_steps:
      return
    t = time.time()
    self.samples.fill_pool()
    self.log(f'pre-training done at step {int(self.step.numpy())}: refilled the pool with '
             f'{self.pool.size} fresh {self.config.injection} injections in '
             f'{time.time() - t:.1f}s; training the takeover')

  def restore_or_init(self):
    """Restores the newest readable checkpoint (`workdir.Checkpoints.restore`); otherwise
    fills the pool. Returns the checkpoint's path or None.

    Raises:
      TrainingError: checkpoints exist and none of them can be read.
    """
    path = self.checkpoints.restore()
    if path is not None:
      self.log(f'resumed from {path} at step {int(self.step.numpy())}')
      return path
    if self.pool is not None:
      t = time.time()
      pretrain = self._pretraining(0)
      self.samples.fill_pool(pretrain)
      self.log(f'filled the pool with {self.pool.size} fresh samples in {time.time() - t:.1f}s'
               + (f' (pre-training for {self.config.pretrain_steps} steps: every cell the '
                  "adversary's, no takeover)" if pretrain else ''))
    return None

  # ------------------------------------------------------------------------------------------
  # The run.

  def run(self):
    """Trains to `config.steps` (resuming), evaluates, exports; returns the metrics dict.

    The chief holds the workdir's lock (`workdir.WorkdirLock`) from start to end, whatever
    the end.

    Raises:
      Interrupted: on Ctrl-C, at the next step boundary with a checkpoint of that step (a
        second Ctrl-C, or a KeyboardInterrupt raised by the caller: at once, the checkpoints
        kept).
      Preempted: on SIGTERM, likewise (`interrupt`: the process ends with status 143 anyway
        if the loop has not stopped within `$TF_MULTINCA_PREEMPT_GRACE_S`).
      DiskFullError: a write of the run found its file system full.
      WorkdirInUse: another process is writing the workdir.
      DivergedError: a NaN or infinite loss or gradient.
    """
    lock = workdir_lib.WorkdirLock(self.workdir, self.log) if self.is_chief else None
    # Where the run is, for the line of a forced exit (read on the watchdog's thread).
    self._progress = {'step': int(self.step.numpy()), 'checkpoint': None, 'doing': 'its start'}
    try:
      if lock is not None:
        lock.acquire()
      with interrupt.deferred(expired=self._grace_expired) as stop:
        return self._run(stop)
    except KeyboardInterrupt:
      last = self.checkpoints.latest
      raise Interrupted(
          f'interrupted at step {int(self.step.numpy())}; rerun the same command to resume '
          f'(from {pathlib.Path(last).name if last else "the start: no checkpoint yet"})'
      ) from None
    except _PEER_ERRORS as e:
      if not self.multi_worker:
        raise
      on_disk = self.checkpoints.on_disk()
      lines = [l.strip() for l in str(e).splitlines() if l.strip()] or [type(e).__name__]
      # TF's message starts with "Graph execution error:"; the cause is a later line.
      first = next((l for l in lines if any(w in l for w in ('unhealthy', 'heartbeat',
                                                              'timed out', 'Deadline'))),
                   lines[0])[:200]
      raise WorkerLostError(
          f'{self.task}: a worker of the multi-worker job stopped answering at step '
          f'{int(self.step.numpy())} ({type(e).__name__}: {first}); relaunch every worker '
          'with the same command to resume from the chief\'s last checkpoint ('
          f'{pathlib.Path(on_disk[0]).name if on_disk else "none yet: from the start"})'
      ) from None
    except Exception as e:  # pylint: disable=broad-except
      if isinstance(e, DiskFullError) or not io.is_disk_full(e):
        raise
      raise self._disk_full(e) from None
    finally:
      if lock is not None:
        lock.release()
      if not self.is_chief:
        shutil.rmtree(self.outdir, ignore_errors=True)

  def _resume_hint(self):
    """'resume from ckpt-N' (the newest checkpoint on disk, which a rerun restores), or what
    a rerun does without one."""
    on_disk = self.checkpoints.on_disk()
    return (f'resume from {pathlib.Path(on_disk[0]).name}' if on_disk else
            'start over (no checkpoint yet)')

  def _disk_full(self, error):
    """The one-line `DiskFullError` of a write that found the file system full: the file (under
    the workdir: relative to it), the space left there and the checkpoint a rerun resumes
    from. What the failed write left (`ckpt-N_temp`, `.name.XXXXXXXX` temporaries) is
    removed when the run starts again."""
    path = io.full_path(error) or self.outdir
    try:
      inside = path.relative_to(self.workdir)
      shown = f'{inside} in workdir {self.workdir}' if inside.parts else f'workdir {path}'
    except ValueError:
      shown = str(path)
    return DiskFullError(
        f'no space left on device writing {shown} ({text.size(io.free_bytes(path))} free on '
        f'its file system); free space, then rerun the same command to '
        f'{self._resume_hint()}')

  def _grace_expired(self, how):
    """The line printed when SIGTERM's grace period runs out before the loop stopped (called
    on the watchdog's thread: it reads only the Python-side `_progress`)."""
    p = self._progress
    return (f'preempted at step {p["step"]} during {p["doing"]}: {how}; exiting with status '
            f'{interrupt.SIGTERM_STATUS} without a new checkpoint; rerun the same command to '
            f'resume from {p["checkpoint"] or "the start (no checkpoint yet)"}')

  def _stop_signal(self, stop):
    """The signal to stop on at this step boundary (0: none). In a multi-worker job every
    worker gets the same answer at the same step (`distribute.agreed_signal`)."""
    signum = stop.signal or 0
    return distribute.agreed_signal(self.strategy, signum) if self.multi_worker else signum

  def _stopped(self, signum, stop, last_ckpt, wall_s, writer):
    """Checkpoints the current step (unless that is the last checkpoint) and returns the
    `Preempted` (SIGTERM) or `Interrupted` (SIGINT) error to raise."""
    step = int(self.step.numpy())
    if last_ckpt != step:
      self.wall_s.assign(wall_s)
      self.checkpoints.save(step)
    writer.flush()
    self._progress['checkpoint'] = name = f'ckpt-{step}'
    by = ('' if stop.signal == signum else
          f' (another worker received {signal.Signals(signum).name})')
    if not self.multi_worker:
      done = f'checkpoint {name} written; rerun the same command to resume'
    elif self.is_chief:
      done = f'checkpoint {name} written; rerun every worker with the same command to resume'
    else:
      done = (f'the chief wrote checkpoint {name}; rerun every worker with the same command '
              'to resume')
    who = f'{self.task}: ' if self.multi_worker else ''
    if signum == signal.SIGTERM:
      return Preempted(f'{who}preempted at step {step}{by}; {done}')
    return Interrupted(f'{who}interrupted at step {step}{by}; {done}')

  def _run(self, stop):
    c = self.config
    if self.is_chief:
      self.workdir.mkdir(parents=True, exist_ok=True)
      io.write_json(self.workdir / 'config.json', c.to_dict())
      workdir_lib.record_provenance(self.workdir)
      removed = io.remove_temporaries(self.workdir, self.workdir / 'export',
                                      self.workdir / 'checkpoints')
      if removed:
        self.log(f'removed {len(removed)} temporary file(s) left by an interrupted run: ' +
                 ', '.join(p.name for p in removed[:4]) + (' ...' if len(removed) > 4 else ''))
    else:
      self.log(f'{self.task}: training with the chief, which writes the run\'s files to '
               f'{self.workdir}; this worker\'s go to {self.outdir} (removed at the end)')
    restored = self.restore_or_init()
    logdir = summaries.logdir(self.outdir, c)
    start_step = int(self.step.numpy())
    if start_step and self.is_chief:  # what a killed run logged after its last checkpoint
      summaries.drop_events_after(logdir, start_step)
    writer = tf.summary.create_file_writer(str(logdir))
    summaries.write_hparams(writer, c)
    t0 = time.time()
    wall_before = float(self.wall_s.numpy())
    recent = []
    last_mean = None  # the mean training loss of the last log window (metrics.json)
    last_ckpt = start_step if restored else None  # the step of the newest checkpoint
    self._progress.update(step=start_step, doing='training',
                          checkpoint=pathlib.Path(restored).name if restored else None)
    stopped_early = False
    out = None
    while int(self.step.numpy()) < c.steps:
      # Ctrl-C and SIGTERM are taken here, between steps: the last checkpoint is complete, the
      # step is checkpointed before stopping, and the exception cannot be swallowed by a
      # finaliser (see `interrupt`).
      signum = self._stop_signal(stop)
      if signum:
        raise self._stopped(signum, stop, last_ckpt, wall_before + time.time() - t0, writer)
      self._enter_stage()
      step_before = int(self.step.numpy())
      out = self.train_step()
      loss = float(out['loss'].numpy())
      if not bool(out['ok'].numpy()):
        kept = self.checkpoints.latest or 'none (no checkpoint yet)'
        raise DivergedError(
            f'the loss became {loss} (gradient norm {float(out["grad_norm"].numpy())}) at '
            f'step {step_before}; training stopped without applying it. The last good '
            f'checkpoint is {kept}. Rerun the same command with a lower learning rate, e.g. '
            f'--set=lr={c.lr / 2:g} (it scales the whole schedule, and the run resumes from '
            'that checkpoint)' + ('' if c.grad_norm else ', or with --set=grad_norm=true') +
            '.')
      step = step_before + 1
      self._progress['step'] = step
      if self.average is not None and step_before >= c.weight_average_from:
        self.average.update(step_lib.rule_vars(self.trainee))
      recent.append(loss)
      if step % c.summary_every == 0 or step == c.steps:
        summaries.write_train(writer, out, step, self.is_adversary)
      if step % c.image_every == 0 or step == c.steps:
        with writer.as_default():
          tf.summary.image('train/pool' if self.pool is not None else 'train/batch',
                           summaries.strip(self.pool.states[:8] if self.pool is not None
                                           else out['x'], self.convention,
                                           self.is_adversary)[None], step=step)
      if step % c.log_every == 0 or step == c.steps:
        done = step - start_step
        rate = (time.time() - t0) / max(done, 1)
        mean = last_mean = float(np.mean(recent))
        # The loss is the window's mean; the terms are the last step's (said so).
        window = f'mean of {len(recent)} steps' if len(recent) > 1 else 'this step'
        parts = (f'loss {mean:.5f} ({window}; step {step}: target '
                 f'{float(out["loss/target"]):.5f}')
        if self.is_adversary:
          parts += (f', old {float(out["loss/old"]):.4f}, orig. fraction '
                    f'{float(out["original_fraction"]):.3f}')
        parts += ')'
        self.log(f'step {step}/{c.steps}: {parts}, {rate:.2f} s/step, ETA '
                 f'{text.hms(rate * (c.steps - step))}')
        recent = []
      # Pre-training weights are not validated: they have not learnt the takeover yet.
      if (c.eval_every and (step % c.eval_every == 0 or step == c.steps)
          and not self._pretraining(step - 1)):
        m = self.validate(writer, step)
        if c.stop_loss and step < c.steps and reached_stop(c, self.is_adversary, m):
          self.log(f'validation score {m["score"]:.5f} < stop_loss {c.stop_loss}' +
                   (f', complete in {m["complete"]:.0%} of the seeds' if self.is_adversary
                    else '') + f': stopping at step {step}')
          stopped_early = True
      if step % c.checkpoint_every == 0 or step == c.steps or stopped_early:
        self.wall_s.assign(wall_before + time.time() - t0)
        self.checkpoints.save(step)
        last_ckpt = step
        self._progress['checkpoint'] = f'ckpt-{step}'
      if stopped_early:
        break
    wall = time.time() - t0
    if last_ckpt != int(self.step.numpy()):
      self.wall_s.assign(wall_before + wall)
      self.checkpoints.save(int(self.step.numpy()))
      last_ckpt = int(self.step.numpy())
      self._progress['checkpoint'] = f'ckpt-{last_ckpt}'
    # A signal during the last steps stops before the final evaluation and export (minutes for
    # a paper config, past a scheduler's grace period); a rerun does them from the checkpoint.
    signum = self._stop_signal(stop)
    if signum:
      raise self._stopped(signum, stop, last_ckpt, wall_before + wall, writer)
    self._progress['doing'] = 'the final evaluation and export'
    result = self.finish(writer, wall_s=wall, steps_this_session=int(self.step.numpy()) -
                         start_step, stopped_early=stopped_early, final_loss=last_mean)
    writer.flush()
    writer.close()
    return result

  @property
  def tensorboard_dir(self):
    """`<workdir>/tensorboard/<config name>`: TensorBoard names the run after the config."""
    return summaries.logdir(self.workdir, self.config)

  # ------------------------------------------------------------------------------------------
  # Evaluation and export.

  def evaluate(self, seed=None):
    """(metrics, strip image, recorded steps) of the trainee on fresh seeds
    (`evaluate.RunEvaluator.evaluate`)."""
    return self.evaluator.evaluate(self.trainee, seed)

  def compare(self):
    """The published adversary `config.compare_with` under the same evaluation, or None."""
    return self.evaluator.compare()

  def validate(self, writer, step):
    """The evaluation on the validation seeds (`eval_seed + 1`): valid/* scalars, and the
    weights with the best score (`RunEvaluator.score`) so far kept in `self.best`. Returns the
    metrics with the score."""
    c = self.config
    t = time.time()
    averaged = self.averaging
    with self._holding(self.average.weights if averaged else None):
      m, _, _ = self.evaluate(seed=c.eval_seed + 1)
    weights = self.average.weights if averaged else step_lib.rule_vars(self.trainee)
    m['score'] = score = float(self.evaluator.score(m))
    improved = better_validation(c, self.is_adversary, m, score, float(self.best.score.numpy()),
                                 bool(self.best.complete.numpy()))
    if improved:
      self.best.keep(weights, score, step, complete_takeover(c, self.is_adversary, m),
                     averaged=averaged)
    summaries.write_evaluation(writer, 'valid', m, step)
    with writer.as_default():
      tf.summary.scalar('valid/best_score', self.best.score, step=step)
    extra = (f', original fraction {m["original_fraction"]:.3f}, complete in '
             f'{round(m["complete"] * c.eval_seeds)}/{c.eval_seeds} seeds'
             if self.is_adversary else '')
    self.log(f'validation at step {step}' +
             (f' of the weights\' average ({int(self.average.count.numpy())} steps, decay '
              f'{c.weight_average:g})' if averaged else '') +
             f' ({c.eval_seeds} seeds, {c.eval_steps} steps, '
             f'{time.time() - t:.0f}s): score {score:.5f}, mse {m["mse"]:.5f}{extra}, alive '
             f'{m["alive"]:.0f}; best {float(self.best.score.numpy()):.5f} at step '
             f'{int(self.best.step.numpy())}' + (' (new best)' if improved else ''))
    return m

  @property
  def averaging(self):
    """Whether the weights' average (weight_average) has started: the validations, the final
    evaluation and the export then take it instead of the last step's weights."""
    return self.average is not None and int(self.average.count.numpy()) > 0

  def _load_rule(self, weights):
    """Assigns `weights` (tensors shaped as the rule's variables) to the trainee's rule."""
    for v, w in zip(step_lib.rule_vars(self.trainee), weights):
      v.assign(w)

  @contextlib.contextmanager
  def _holding(self, weights):
    """Within the block the trainee's rule holds `weights` (None: its own, untouched), then
    its own again, whatever happens inside."""
    if weights is None:
      yield
      return
    own = [tf.identity(v) for v in step_lib.rule_vars(self.trainee)]
    self._load_rule(weights)
    try:
      yield
    finally:
      self._load_rule(own)

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
    paths = {'saved_model': saved_model.write(rules, d / 'saved_model', info)}
    name = 'adversary' if self.is_adversary else 'model'
    paths['weights_h5'] = weights_file.save(self.trainee, d / f'{name}.weights.h5',
                                            config=c.name, step=info['step'])
    if not self.is_adversary:
      paths['webgl_json'] = formats.write_webgl_json(self.trainee.get_rule_weights(),
                                                     d / f'{name}.webgl.json')
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
    if not self.is_chief:
      self.log(f'{self.task}: trained to step {step}; the chief evaluates and exports')
      return {'config': c.name, 'kind': c.kind, 'steps': step, 'chief': False,
              'stopped_early': stopped_early}
    best = None
    if c.eval_every and int(self.best.step.numpy()) >= 0:
      best = {'step': int(self.best.step.numpy()),
              'valid_score': float(self.best.score.numpy()),
              'complete': bool(self.best.complete.numpy()),
              'averaged': bool(self.best.averaged.numpy()),
              'last_step': step, 'used': bool(c.keep_best)}
    average = None
    if self.average is not None:
      average = {'decay': c.weight_average, 'from_step': c.weight_average_from,
                 'steps_averaged': int(self.average.count.numpy())}
    if best and best['used']:
      self._load_rule(self.best.weights)
      self.log(f'using the best validated weights (step {best["step"]}' +
               (', the average' if best['averaged'] else '') + ', validation score '
               f'{best["valid_score"]:.5f}) for the evaluation and the export')
    elif self.averaging:
      self._load_rule(self.average.weights)
      self.log(f'using the weights\' average ({average["steps_averaged"]} steps, decay '
               f'{c.weight_average:g}) for the evaluation and the export')
    m, strip, _ = self.evaluate()
    if _finished_step(self.workdir) != step:  # a rerun of a finished run: TensorBoard has them
      with writer.as_default():
        tf.summary.image('eval/strip', strip[None].astype(np.float32), step=step)
      summaries.write_evaluation(writer, 'eval', m, step)
    reference = self.compare()
    test_set = self.evaluator.test_set(
        self.trainee, targets.build_target(c.target, self.convention, self.grid,
                                           original=self.original, fire_rate=c.fire_rate),
        adversary_configs.bar_kind(c.name)) if self.is_adversary else None
    paths = self.export(best['step'] if best and best['used'] else step)
    # Whether the exported weights meet the stop criterion: the run stopped on it, or their
    # validation meets it at the last step, where nothing was left to stop (the fig. 15 table
    # reads this rather than judging the criterion again).
    met_stop_rule = stopped_early or bool(best and best['used'] and meets_stop(
        c, self.is_adversary, best['valid_score'], best['complete']))
    doc = {'config': c.name, 'kind': c.kind, 'steps': step, 'stopped_early': stopped_early,
           'met_stop_rule': met_stop_rule,
           'final_train_loss': final_loss,
           'best': best, 'weight_average': average,
           'wall_s_this_session': wall_s, 'steps_this_session': steps_this_session,
           'wall_s_total': float(self.wall_s.numpy()),
           's_per_step': wall_s / max(steps_this_session, 1), 'eval': m,
           'reference': reference,
           'test_set': evaluate.summary(test_set) if test_set is not None else None,
           'export': paths, 'eval_wall_s': time.time() - t}
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
    if test_set is not None:
      self.log(evaluate.verdict_line(test_set))
    return doc

  def register(self, name, weights):
    """Registers the trained NCA in <workdir>/registered.json and the user's registry."""
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


def _finished_step(workdir):
  """The step of the final evaluation recorded in `workdir`'s metrics.json, or None."""
  try:
    return json.loads((pathlib.Path(workdir) / 'metrics.json').read_text(encoding='utf-8'))[
        'steps']
  except (OSError, ValueError, KeyError, TypeError):
    return None


def train(config, workdir, log=print, strategy=None):
  """Trains `config` in `workdir` (resuming); returns the metrics dict (see `Trainer.run`).

  `strategy`: a `tf.distribute.Strategy` (see `distribute.make_strategy`); None for the current
  one (one device unless called inside a strategy's scope).
  """
  return Trainer(config, workdir, log=log, strategy=strategy).run()
