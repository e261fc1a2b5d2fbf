"""A run's directory: its config check, provenance, and checkpoints kept safe across crashes.

Checkpoints are found from their files (a missing or stale state file hides none), each is read
in full before it is restored (checksums), an unreadable one is set aside as
`corrupt-ckpt-N.*` (never deleted) and the one before is used; checkpoints that exist are never
trained over from step 0.
"""

import dataclasses
import datetime
import fcntl
import json
import os
import pathlib
import re
import socket
import subprocess

import numpy as np
import tensorflow as tf

from tf_multinca import errors
from tf_multinca import fileio
from tf_multinca.configs import base as config_lib

PROVENANCE_FILE = 'provenance.json'  # the code commit(s) a run was trained at
CONFIG_FILE = 'config.json'
CHECKPOINTS = 'checkpoints'


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


class Preempted(TrainingError):
  """The run was ended by SIGTERM (a scheduler's preemption) and stopped at a step boundary
  with a checkpoint of that step; the same command resumes. 143 is the shell's status of a
  process SIGTERM ended."""
  exit_code = 143


class WorkerLostError(TrainingError):
  """A worker of a multi-worker job stopped answering; the chief's checkpoints are kept."""
  exit_code = 4


class DiskFullError(TrainingError):
  """A write of the run found its file system full; the checkpoints written are kept and the
  same command resumes once there is space (a half-written checkpoint is removed then)."""
  exit_code = fileio.DiskFullError.exit_code


class WorkdirInUse(TrainingError):
  """Another process holds the workdir's lock (`WorkdirLock`)."""


def check_config(workdir, config):
  """Refuses a workdir whose config.json disagrees with `config` (before touching it).

  Raises:
    TrainingError: naming the fields that differ (those of `RESUMABLE_CHANGES` may).
  """
  workdir = pathlib.Path(workdir)
  path = workdir / CONFIG_FILE
  if workdir.exists() and not workdir.is_dir():
    raise TrainingError(f'--workdir {workdir} exists and is not a directory')
  if not path.exists():
    return
  try:
    old = json.loads(path.read_text(encoding='utf-8'))
  except ValueError as e:
    raise TrainingError(f'{path} is not valid JSON ({e}); use another --workdir') from None
  new = json.loads(json.dumps(config.to_dict()))
  # A field added after the run started is absent from its config.json: it ran with the
  # field's default.
  defaults = json.loads(json.dumps({f.name: f.default for f in
                                    dataclasses.fields(config_lib.TrainConfig)}))
  diff = sorted(k for k in set(old) | set(new)
                if k not in config_lib.RESUMABLE_CHANGES
                and old.get(k, defaults.get(k)) != new.get(k))
  if diff:
    raise TrainingError(
        f'{workdir} holds a run with a different config (fields: {", ".join(diff)}); '
        'resume it with the same config, or pass a new --workdir')


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
    fileio.write_json(path, doc)
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


class BestWeights(tf.Module):
  """A copy of the trainee's rule variables with their validation score and step, whether
  that validation's takeover was complete (`loop.better_validation`) and whether the weights
  were the moving average's."""

  def __init__(self, variables):
    super().__init__(name='best')
    self.weights = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name=f'w{i}')
                    for i, v in enumerate(variables)]
    self.score = tf.Variable(np.inf, dtype=tf.float32, trainable=False, name='score')
    self.step = tf.Variable(-1, dtype=tf.int64, trainable=False, name='step')
    # Added later: a checkpoint without it restores False (its best then counts as incomplete).
    self.complete = tf.Variable(False, trainable=False, name='complete')
    # Whether the weights are the moving average's (weight_average); False in older checkpoints.
    self.averaged = tf.Variable(False, trainable=False, name='averaged')

  def keep(self, variables, score, step, complete=False, averaged=False):
    for b, v in zip(self.weights, variables):
      b.assign(v)
    self.score.assign(score)
    self.step.assign(step)
    self.complete.assign(complete)
    self.averaged.assign(averaged)


class WeightAverage(tf.Module):
  """An exponential moving average of the trainee's rule variables (`weight_average`).

  Args:
    variables: the rule's variables (shapes and dtypes of the average's).
    decay: the per-step decay, in [0, 1).
  """

  def __init__(self, variables, decay):
    super().__init__(name='average')
    self.decay = float(decay)
    self.weights = [tf.Variable(tf.zeros(v.shape, v.dtype), trainable=False, name=f'w{i}')
                    for i, v in enumerate(variables)]
    # Steps averaged so far; 0 = not started (the first update copies the weights).
    self.count = tf.Variable(0, dtype=tf.int64, trainable=False, name='count')

  @tf.function
  def update(self, variables):
    """Folds the current `variables` into the average (the first call copies them)."""
    d = tf.where(self.count > 0, self.decay, 0.0)
    for a, v in zip(self.weights, variables):
      a.assign(d * a + (1.0 - d) * v)
    self.count.assign_add(1)


def unreadable(prefix):
  """Why the checkpoint `prefix` cannot be read in full (a truncated file, a checksum), or ''."""
  try:
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_shape_map():
      reader.get_tensor(name)
  except (tf.errors.OpError, ValueError) as e:
    text = str(e).strip()
    return text.splitlines()[-1][:160] if text else type(e).__name__
  return ''


class Checkpoints:
  """The run's `tf.train.CheckpointManager` in `<workdir>/checkpoints`, with recovery.

  Args:
    workdir: the run's directory.
    core: {name: trackable} that every checkpoint of the run holds (must all restore).
    later: {name: trackable} added to the checkpoints after some runs had started: older
      checkpoints may lack them (they keep their initial values).
    keep: checkpoints kept.
    log: a callable taking one line.
    write_dir: where this process writes its checkpoints, if not `workdir` (a multi-worker
      job's other workers: a temporary directory). It then reads the workdir's (the chief's)
      checkpoints and never changes them.
  """

  def __init__(self, workdir, core, later, keep, log=print, write_dir=None):
    self.directory = pathlib.Path(workdir) / CHECKPOINTS
    write = pathlib.Path(write_dir) / CHECKPOINTS if write_dir is not None else self.directory
    self.read_only = write != self.directory
    self.keep = keep
    self.log = log
    self._core = tf.train.Checkpoint(**core)
    self.checkpoint = tf.train.Checkpoint(**core, **later)
    self.manager = tf.train.CheckpointManager(self.checkpoint, str(write), max_to_keep=keep)

  @property
  def latest(self):
    """The newest checkpoint's prefix, or None."""
    return self.manager.latest_checkpoint

  def save(self, step):
    """Writes checkpoint `ckpt-<step>` (the oldest beyond `keep` is removed)."""
    return self.manager.save(checkpoint_number=step)

  def on_disk(self):
    """Checkpoint prefixes in checkpoints/, newest first, from the files themselves: a deleted
    or stale state file must not hide them."""
    found = {}
    for index in self.directory.glob('ckpt-*.index'):
      m = re.fullmatch(r'ckpt-(\d+)\.index', index.name)
      if m:
        found[int(m.group(1))] = str(index.parent / f'ckpt-{m.group(1)}')
    return [found[n] for n in sorted(found, reverse=True)]

  @staticmethod
  def set_aside(prefix):
    """Renames an unreadable checkpoint's files to `corrupt-ckpt-N.*` (kept, never deleted)."""
    path = pathlib.Path(prefix)
    for f in path.parent.glob(path.name + '.*'):
      os.replace(f, f.with_name('corrupt-' + f.name))

  def restore(self):
    """Restores the newest readable checkpoint; returns its prefix, or None if there is none.

    A missing state file (`checkpoints/checkpoint`) is rebuilt from the checkpoints on disk;
    an unreadable newest checkpoint is set aside (`corrupt-ckpt-N.*`) and the one before is
    used; the log says both.

    Raises:
      TrainingError: checkpoints exist and none of them can be read.
    """
    d = self.directory
    on_disk = self.on_disk()
    if self.read_only:  # the chief's checkpoints: read the newest that reads in full
      for path in on_disk:
        if not unreadable(path):
          self._core.restore(path).assert_existing_objects_matched().expect_partial()
          self.checkpoint.restore(path).expect_partial()
          return path
      if on_disk:
        raise TrainingError(f'none of the checkpoints in {d} can be read')
      return None
    latest = self.manager.latest_checkpoint
    if on_disk and latest != on_disk[0]:
      self.log(f'the checkpoint state file {d / "checkpoint"} is missing or stale; recovering '
               f'from the checkpoints on disk ({", ".join(pathlib.Path(p).name for p in on_disk)})')
    for i, path in enumerate(on_disk):
      reason = unreadable(path)
      if reason:
        self.log(f'checkpoint {path} is unreadable ({reason}); set aside as corrupt-'
                 f'{pathlib.Path(path).name}.*, trying the one before')
        self.set_aside(path)
        continue
      # Read in full above (every checksum checked), so a restore cannot fail half-way.
      self._core.restore(path).assert_existing_objects_matched().expect_partial()
      self.checkpoint.restore(path).expect_partial()
      good = on_disk[i:]
      if latest != path or i:
        # The manager must know every checkpoint kept, so that it rotates them and never
        # loses track of one.
        tf.compat.v1.train.update_checkpoint_state(
            str(d), path, all_model_checkpoint_paths=list(reversed(good)))
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(d), max_to_keep=self.keep)
      return path
    if on_disk:
      raise TrainingError(f'none of the checkpoints in {d} can be read; move the directory '
                          'aside to start over, or pass a new --workdir')
    return None


LOCK_FILE = '.lock'  # <workdir>/.lock: who writes the workdir (WorkdirLock)


class WorkdirLock:
  """One writer per workdir: `<workdir>/.lock`, held with `fcntl.flock` for the whole run.

  The kernel's flock is the lock, the file only says who holds it (JSON: pid, host, start
  time). A process killed with -9 leaves the file but not the lock: the next run takes it over
  and says so. `release` removes the file, then the lock. flock works on a local file system
  and on NFS (Linux maps it to NFS byte-range locks); where the file system refuses locks, the
  run goes on unlocked with a line saying so. The descriptor is not inherited by child
  processes.

  Args:
    workdir: the run's directory (created if missing).
    log: a callable taking one line.
  """

  def __init__(self, workdir, log=print):
    self.workdir = pathlib.Path(workdir)
    self.path = self.workdir / LOCK_FILE
    self.log = log
    self._fd = None

  @property
  def held(self):
    """Whether this object holds the lock."""
    return self._fd is not None

  def acquire(self):
    """Takes the lock; returns self.

    Raises:
      WorkdirInUse: another process holds it (the message names it and what to do).
    """
    self.workdir.mkdir(parents=True, exist_ok=True)
    for _ in range(10):
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        holder = _lock_holder(fd)
        os.close(fd)
        raise _in_use(self.workdir, holder) from None
      except OSError as e:  # ENOLCK, EOPNOTSUPP: a file system without locks
        os.close(fd)
        self.log(f'cannot lock {self.path} ({e.strerror}); going on without the one-writer '
                 'check')
        return self
      # The holder before us may have removed the file between our open and our flock: we
      # would hold a lock on a file nobody else opens. Try again on the new one.
      if not _same_file(fd, self.path):
        os.close(fd)
        continue
      left = _lock_holder(fd)
      if left.get('pid'):
        self.log(f'took over the lock of workdir {self.workdir} left by {_describe(left)}, '
                 'which ended without releasing it')
      now = datetime.datetime.now().astimezone()
      doc = {'pid': os.getpid(), 'host': socket.gethostname(),
             'started': now.isoformat(timespec='seconds'), 'started_unix': now.timestamp()}
      try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(doc) + '\n').encode('utf-8'), 0)
      except OSError as e:  # a full disk: the error names the file
        os.close(fd)
        raise OSError(e.errno, e.strerror, str(self.path)) from e
      self._fd = fd
      return self
    raise WorkdirInUse(f'workdir {self.workdir}: could not take {self.path} (other processes '
                       'keep replacing it); wait for them or pass another --workdir')

  def check(self):
    """Raises WorkdirInUse if another process holds the lock now, without taking it: a run
    calls it before its minutes of setup, so that a second one stops at once (`acquire`
    still decides)."""
    try:
      fd = os.open(self.path, os.O_RDONLY)
    except OSError:
      return  # no lock file: nobody holds it
    try:
      fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
      raise _in_use(self.workdir, _lock_holder(fd)) from None
    except OSError:
      pass  # a file system without locks: `acquire` says so
    finally:
      os.close(fd)

  def release(self):
    """Removes the lock file and releases the lock (a no-op when not held)."""
    fd, self._fd = self._fd, None
    if fd is None:
      return
    try:
      if _same_file(fd, self.path):
        self.path.unlink()
    except OSError:
      pass
    finally:
      os.close(fd)  # releases the flock

  def __enter__(self):
    return self.acquire()

  def __exit__(self, *exc):
    self.release()


def _in_use(workdir, holder):
  """The error of a workdir whose lock `holder` (the lock file's JSON) holds."""
  return WorkdirInUse(f'workdir {workdir} is in use by {_describe(holder)}; wait for it or pass '
                      'another --workdir')


def _same_file(fd, path):
  """Whether the open descriptor `fd` is the file at `path` now."""
  try:
    a, b = os.fstat(fd), os.stat(path)
  except OSError:
    return False
  return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _lock_holder(fd):
  """The lock file's JSON ({} if empty or unreadable: a holder that has not written it yet)."""
  try:
    data = os.pread(fd, 4096, 0)
    doc = json.loads(data.decode('utf-8')) if data.strip() else {}
  except (OSError, ValueError):
    return {}
  return doc if isinstance(doc, dict) else {}


def _describe(holder):
  """'process P (started at T)' of a lock file's JSON, ' on H' when H is another host."""
  if not holder.get('pid'):
    return 'another process'
  host = holder.get('host')
  where = f' on {host}' if host and host != socket.gethostname() else ''
  return f'process {holder["pid"]}{where} (started at {holder.get("started", "?")})'
