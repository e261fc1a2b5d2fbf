"""Faults a cluster brings, injected: SIGTERM (preemption), kill -9, a full disk, two writers on
one workdir, a lock left by a dead process. Every interrupted run resumes and ends bit for bit
where an uninterrupted one does."""

import errno
import json
import os
import pathlib
import random
import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from tf_multinca import configs
from tf_multinca import fileio
from tf_multinca import weights_file
from tf_multinca.training import distribute
from tf_multinca.training import loop
from tf_multinca.training import reproduce
from tf_multinca.training import workdir as workdir_lib

REPO = pathlib.Path(__file__).resolve().parents[1]
# A few steps of the tiny config, a line per step, a checkpoint every 2 and no validation (the
# export is then the last step's weights).
ARGS = ['--config=lizard_red_testing', '--set=steps=8', '--set=checkpoint_every=2',
        '--set=eval_every=0', '--set=log_every=1']
WEIGHTS = pathlib.Path('export') / 'adversary.weights.h5'


def _env(mirror, **extra):
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', TF_MULTINCA_MIRROR=str(mirror), **extra)


def _start(work, mirror, stderr):
  """The training binary on `work` (stdout piped, a line per step; stderr to a file)."""
  return subprocess.Popen([sys.executable, '-m', 'tools.train_adversary', *ARGS,
                           f'--workdir={work}'], cwd=REPO, env=_env(mirror), text=True,
                          stdout=subprocess.PIPE, stderr=stderr)


def _run(work, mirror):
  return subprocess.run([sys.executable, '-m', 'tools.train_adversary', *ARGS,
                         f'--workdir={work}'], cwd=REPO, env=_env(mirror), capture_output=True,
                        text=True, timeout=300)


def _read_until_step(proc, step, timeout=180):
  """The stdout lines of `proc` up to its line 'step <step>/...'."""
  lines, deadline = [], time.time() + timeout
  for line in proc.stdout:
    lines.append(line)
    if line.startswith(f'step {step}/'):
      return lines
    assert time.time() < deadline, ''.join(lines)
  raise AssertionError(f'exited ({proc.wait()}) before step {step}:\n' + ''.join(lines))


def _last_step(text):
  return max(int(n) for n in re.findall(r'^step (\d+)/', text, re.M))


def _same_weights(a, b):
  """Whether two exports' adversary weights are bit for bit the same."""
  wa, wb = weights_file.read(a / WEIGHTS), weights_file.read(b / WEIGHTS)
  return sorted(wa) == sorted(wb) and all(
      wa[k].dtype == wb[k].dtype and wa[k].tobytes() == wb[k].tobytes() for k in wa)


@pytest.fixture(scope='module')
def reference(tmp_path_factory, mirror):
  """An uninterrupted run, during which (frozen by SIGSTOP after its first step, so the timing
  cannot decide) a second process is started on its workdir. Returns (workdir, the first's
  pid, the second's CompletedProcess, the first's exit status)."""
  work = tmp_path_factory.mktemp('faults') / 'reference'
  err = open(work.parent / 'reference.err', 'w', encoding='utf-8')  # pylint: disable=consider-using-with
  first = _start(work, mirror, err)
  try:
    _read_until_step(first, 1)
    first.send_signal(signal.SIGSTOP)
    try:
      t = time.time()
      second = _run(work, mirror)
      second.took = time.time() - t
    finally:
      first.send_signal(signal.SIGCONT)
    first.communicate(timeout=300)
  finally:
    if first.poll() is None:
      first.kill()
      first.wait()
    err.close()
  return work, first.pid, second, first.returncode


@pytest.mark.slow
def test_a_second_writer_exits_2_at_once_and_the_first_finishes(reference):
  work, pid, second, first_status = reference
  # Refused before its setup (the original, the organisms grown for the injection check).
  assert second.took < 60, second.took
  lines = second.stderr.strip().splitlines()
  assert second.returncode == 2, second.stderr[-3000:]
  assert re.fullmatch(
      rf'error: workdir {re.escape(str(work))} is in use by process {pid} \(started at '
      r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d\); wait for it or pass another --workdir',
      lines[-1]), lines[-1]
  assert 'Traceback' not in second.stderr and not second.stdout.strip()
  assert first_status == 0
  assert json.loads((work / 'metrics.json').read_text())['steps'] == 8
  assert not (work / workdir_lib.LOCK_FILE).exists()  # released at the end


@pytest.mark.slow
def test_sigterm_checkpoints_its_step_exits_143_and_resumes_bit_identical(
    tmp_path, mirror, reference):
  work = tmp_path / 'run'
  with open(tmp_path / 'err', 'w', encoding='utf-8') as err:
    proc = _start(work, mirror, err)
    try:
      seen = ''.join(_read_until_step(proc, 3))
      proc.send_signal(signal.SIGTERM)
      t = time.time()
      out, _ = proc.communicate(timeout=120)
      took = time.time() - t
    finally:
      proc.kill()
  seen += out
  last = (tmp_path / 'err').read_text().strip().splitlines()[-1]
  assert proc.returncode == 143, last
  step = _last_step(seen)
  # The step it was training when the signal came is finished and checkpointed: none is lost.
  assert last == (f'preempted at step {step}; checkpoint ckpt-{step} written; rerun the same '
                  'command to resume')
  assert (work / 'checkpoints' / f'ckpt-{step}.index').is_file()
  assert took < 30, took
  print(f'SIGTERM: stopped at step {step}, {took:.1f} s after the signal, 0 steps lost')
  again = _run(work, mirror)
  assert again.returncode == 0, again.stderr[-3000:]
  assert f'ckpt-{step} at step {step}' in again.stdout  # resumed there
  assert f'step {step}/' not in again.stdout
  assert step == 8 or f'step {step + 1}/8' in again.stdout
  assert _same_weights(work, reference[0])


@pytest.mark.slow
def test_kill_9_at_three_random_steps_resumes_bit_identical(tmp_path, mirror, reference):
  seed = random.randrange(10**6)
  kills = sorted(random.Random(seed).sample(range(1, 8), 3))
  work = tmp_path / 'run'
  for i, step in enumerate(kills):
    with open(tmp_path / f'err{i}', 'w', encoding='utf-8') as err:
      proc = _start(work, mirror, err)
      try:
        seen = ''.join(_read_until_step(proc, step))
        proc.kill()
        proc.wait()
      finally:
        proc.kill()
    if i:  # the lock of the process killed before it was taken over
      assert 'took over the lock of workdir' in seen and 'which ended without releasing' in seen
  again = _run(work, mirror)
  assert again.returncode == 0, (seed, kills, again.stderr[-3000:])
  assert 'took over the lock of workdir' in again.stdout
  assert 'resumed from' in again.stdout
  assert _same_weights(work, reference[0]), (seed, kills)


@pytest.fixture
def python_sigint():
  """Python's own SIGINT handler, as in a terminal (see tests/test_interrupt.py)."""
  previous = signal.signal(signal.SIGINT, signal.default_int_handler)
  yield
  signal.signal(signal.SIGINT, previous)


@pytest.mark.slow
def test_ctrl_c_checkpoints_the_step_it_stops_at(tmp_path, mirror, monkeypatch, python_sigint):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  config = configs.get_config('lizard_red_testing', ['steps=4', 'eval_every=0'])
  work = tmp_path / 'run'

  def log(line):
    if line.startswith('step 3/'):
      os.kill(os.getpid(), signal.SIGINT)

  with pytest.raises(loop.Interrupted) as e:
    loop.Trainer(config, work, log=log).run()
  assert str(e.value) == ('interrupted at step 3; checkpoint ckpt-3 written; rerun the same '
                          'command to resume')
  assert e.value.exit_code == 130 and (work / 'checkpoints' / 'ckpt-3.index').is_file()
  assert not (work / workdir_lib.LOCK_FILE).exists()


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_a_rerun_resumes(tmp_path, mirror, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  config = configs.get_config('lizard_red_testing', ['steps=6', 'eval_every=0'])
  work = tmp_path / 'run'
  free = r'\(\d+(\.\d)? (B|KiB|MiB|GiB|TiB) free on its file system\)'
  save = workdir_lib.Checkpoints.save

  def full_at_step_4(self, step):  # SaveV2 on a full disk: a half-written ckpt-4_temp
    if step != 4:
      return save(self, step)
    temp = self.directory / 'ckpt-4_temp'
    temp.mkdir()
    (temp / 'part-00000-of-00001.data-00000-of-00001.tempstate1').write_bytes(b'\0' * 10)
    raise tf.errors.ResourceExhaustedError(
        None, None, f'{{{{function_node __wrapped__SaveV2}}}} {temp}/part-00000-of-00001.data-'
        '00000-of-00001.tempstate1; No space left on device [Op:SaveV2]')

  monkeypatch.setattr(workdir_lib.Checkpoints, 'save', full_at_step_4)
  with pytest.raises(loop.DiskFullError) as e:
    loop.Trainer(config, work, log=lambda m: None).run()
  message = str(e.value)
  assert e.value.exit_code == 5 and '\n' not in message
  assert re.fullmatch(
      r'no space left on device writing checkpoints/ckpt-4_temp/part-00000-of-00001\.data-'
      rf'00000-of-00001\.tempstate1 in workdir {re.escape(str(work))} {free}; free space, then '
      'rerun the same command to resume from ckpt-2', message), message
  assert not (work / workdir_lib.LOCK_FILE).exists()
  monkeypatch.setattr(workdir_lib.Checkpoints, 'save', save)

  # A full disk at metrics.json (an OSError from a plain write, as on a real full disk): the
  # temporary is removed and the message names the file.
  write_text = pathlib.Path.write_text

  def full_at_metrics(self, data, *args, **kwargs):
    if self.name.startswith('.metrics.json.'):
      write_text(self, data[:10], *args, **kwargs)  # half of it
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return write_text(self, data, *args, **kwargs)

  monkeypatch.setattr(pathlib.Path, 'write_text', full_at_metrics)
  lines = []
  with pytest.raises(loop.DiskFullError) as e:
    loop.Trainer(config, work, log=lines.append).run()
  assert any(l.startswith('removed 1 temporary file(s) left by an interrupted run: '
                          'ckpt-4_temp') for l in lines), lines
  assert any(l.startswith(f'resumed from {work / "checkpoints" / "ckpt-2"} at step 2')
             for l in lines), lines
  assert re.fullmatch(rf'no space left on device writing metrics\.json in workdir '
                      rf'{re.escape(str(work))} {free}; free space, then rerun the same command '
                      'to resume from ckpt-6', str(e.value)), str(e.value)
  assert not (work / 'metrics.json').exists()
  assert not [p.name for p in work.iterdir() if p.name.startswith('.metrics.json.')]
  monkeypatch.setattr(pathlib.Path, 'write_text', write_text)

  lines = []
  loop.Trainer(config, work, log=lines.append).run()
  assert any(l.startswith(f'resumed from {work / "checkpoints" / "ckpt-6"}') for l in lines)
  assert json.loads((work / 'metrics.json').read_text())['steps'] == 6

  # A results entry (tools.reproduce) on a full disk: one line, and the entry is the old one,
  # whole, never a half-written new one.
  results = tmp_path / 'results'
  entry = results / 'lizard_red_testing'
  entry.mkdir(parents=True)
  (entry / 'old.txt').write_text('the previous entry')

  def png_on_a_full_disk(image, path):
    del image
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

  monkeypatch.setattr(reproduce.render, 'save_png', png_on_a_full_disk)
  with pytest.raises(fileio.DiskFullError) as e:
    reproduce.collect('lizard_red_testing', config, work, results, seeds=1, log=lambda m: None,
                      test_seeds=1)
  assert e.value.exit_code == 5
  assert re.fullmatch(rf'no space left on device writing {re.escape(str(entry))} {free}; free '
                      'space, then rerun the same command', str(e.value)), str(e.value)
  assert sorted(p.name for p in results.iterdir()) == ['lizard_red_testing']
  assert sorted(p.name for p in entry.iterdir()) == ['old.txt']


def test_an_atomic_write_on_a_full_disk_leaves_the_old_file(tmp_path):
  path = tmp_path / 'doc.json'
  fileio.write_json(path, {'old': True})

  def half_then_full(tmp):
    pathlib.Path(tmp).write_text('{"ne')
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  with pytest.raises(fileio.DiskFullError) as e:
    fileio.write_file(path, half_then_full)
  assert str(e.value).startswith(f'no space left on device writing {path} (')
  assert e.value.errno == errno.ENOSPC and isinstance(e.value, OSError)
  assert json.loads(path.read_text()) == {'old': True}
  assert sorted(p.name for p in tmp_path.iterdir()) == ['doc.json']


def test_tensorflows_full_disk_errors_are_recognised():
  e = tf.errors.ResourceExhaustedError(None, None, '/w/checkpoints/ckpt-3_temp/part-0; No '
                                       'space left on device [Op:SaveV2]')
  assert fileio.is_disk_full(e)
  assert fileio.full_path(e) == pathlib.Path('/w/checkpoints/ckpt-3_temp/part-0')
  assert not fileio.is_disk_full(tf.errors.ResourceExhaustedError(None, None, 'OOM'))
  wrapped = RuntimeError('saving failed')
  wrapped.__cause__ = OSError(errno.ENOSPC, 'full')
  assert fileio.is_disk_full(wrapped)


# ----------------------------------------------------------------------------------------------
# The workdir's lock.

def _dead_pid():
  p = subprocess.Popen(['true'])
  p.wait()
  return p.pid


def test_a_locked_workdir_names_its_holder(tmp_path):
  lines = []
  with workdir_lib.WorkdirLock(tmp_path / 'w', lines.append) as held:
    doc = json.loads(held.path.read_text())
    assert doc['pid'] == os.getpid() and doc['host'] == socket.gethostname()
    with pytest.raises(workdir_lib.WorkdirInUse) as e:
      workdir_lib.WorkdirLock(tmp_path / 'w').acquire()
    with pytest.raises(workdir_lib.WorkdirInUse) as early:  # the probe before a run's setup
      workdir_lib.WorkdirLock(tmp_path / 'w').check()
  assert str(e.value) == str(early.value) == (
      f'workdir {tmp_path / "w"} is in use by process {os.getpid()} (started at '
      f'{doc["started"]}); wait for it or pass another --workdir')
  assert e.value.exit_code == 2 and not lines
  assert not (tmp_path / 'w' / workdir_lib.LOCK_FILE).exists()  # released
  workdir_lib.WorkdirLock(tmp_path / 'w').check()  # free again


def test_a_stale_lock_is_taken_over_with_a_line(tmp_path):
  work = tmp_path / 'w'
  work.mkdir()
  pid = _dead_pid()
  (work / workdir_lib.LOCK_FILE).write_text(json.dumps(
      {'pid': pid, 'host': socket.gethostname(), 'started': '2024-05-01T10:00:00+00:00'}))
  lines = []
  lock = workdir_lib.WorkdirLock(work, lines.append).acquire()
  try:
    assert lines == [f'took over the lock of workdir {work} left by process {pid} (started at '
                     '2024-05-01T10:00:00+00:00), which ended without releasing it']
    assert json.loads((work / workdir_lib.LOCK_FILE).read_text())['pid'] == os.getpid()
  finally:
    lock.release()
  lines.clear()
  workdir_lib.WorkdirLock(work, lines.append).acquire().release()
  assert not lines  # a released lock leaves nothing to take over


@pytest.mark.slow
def test_a_stale_lock_does_not_stop_a_run(tmp_path, mirror, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  work = tmp_path / 'run'
  work.mkdir()
  pid = _dead_pid()
  (work / workdir_lib.LOCK_FILE).write_text(json.dumps({'pid': pid, 'started': 'then'}))
  lines = []
  config = configs.get_config('lizard_red_testing', ['steps=1', 'eval_every=0'])
  loop.Trainer(config, work, log=lines.append).run()
  assert lines[0] == (f'took over the lock of workdir {work} left by process {pid} (started at '
                      'then), which ended without releasing it')
  assert not (work / workdir_lib.LOCK_FILE).exists()


# ----------------------------------------------------------------------------------------------
# Multi-worker: every worker stops at the same step.

_AGREE = r'''
import json, sys
from tf_multinca.training import distribute
strategy = distribute.make_strategy('multi_worker')
mine = int(sys.argv[1])
# Three step boundaries; this worker received its signal before the second.
print(json.dumps([distribute.agreed_signal(strategy, mine if i == 1 else 0) for i in range(3)]))
'''


def test_one_process_keeps_its_own_signal():
  strategy = tf.distribute.get_strategy()
  for s in (0, signal.SIGINT, signal.SIGTERM):
    assert distribute.agreed_signal(strategy, s) == s


@pytest.mark.slow
def test_workers_agree_on_the_signal_of_any_of_them():
  socks = [socket.socket() for _ in range(2)]
  for s in socks:
    s.bind(('127.0.0.1', 0))
  cluster = {'worker': [f'127.0.0.1:{s.getsockname()[1]}' for s in socks]}
  for s in socks:
    s.close()
  procs = []
  for i, received in enumerate((int(signal.SIGTERM), 0)):
    tf_config = json.dumps({'cluster': cluster, 'task': {'type': 'worker', 'index': i}})
    procs.append(subprocess.Popen(
        [sys.executable, '-c', _AGREE, str(received)], cwd=REPO, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', TF_CONFIG=tf_config,
                 PYTHONPATH=str(REPO), **{distribute.TIMEOUT_ENV: '60'})))
  try:
    outs = [p.communicate(timeout=180) for p in procs]
  finally:
    for p in procs:
      p.kill()
  assert [p.returncode for p in procs] == [0, 0], [e[-2000:] for _, e in outs]
  assert [json.loads(o) for o, _ in outs] == [[0, int(signal.SIGTERM), 0]] * 2
