"""Independent runs fanned out over N processes: each its own command and log, one progress
line per run.

The paper's campaign is embarrassingly parallel (7 experiments, a 16-cell sweep); every run
resumes from its own workdir, so a fan-out that is interrupted loses nothing either.
"""

import dataclasses
import os
import pathlib
import subprocess
import time

from tf_multinca import errors
from tf_multinca import text

PROGRESS_EVERY_S = 60.0  # a line per running job this often (its log's last progress line)


class FanoutError(errors.Error, RuntimeError):
  """Some of the fanned-out runs failed; each is named with its exit status and log."""
  exit_code = 1


@dataclasses.dataclass(frozen=True)
class Job:
  """One process of a fan-out.

  Attributes:
    name: what the progress lines call it.
    argv: the command (`[sys.executable, '-m', ...]`).
    log: the file its stdout and stderr go to (appended: a resumed run keeps its history).
  """
  name: str
  argv: tuple
  log: pathlib.Path


@dataclasses.dataclass(frozen=True)
class Outcome:
  """How a job ended: its exit status and wall time."""
  job: Job
  returncode: int
  wall_s: float


def threads_per_job(parallel, cpus=None):
  """TF's intra-op threads for each of `parallel` processes: the CPUs shared out (at least 1)."""
  cpus = cpus or os.cpu_count() or 1
  return max(1, cpus // max(1, parallel))


def _last_progress(path):
  """The last line of a log that reads as progress ('step ...' or '--- ...'), or ''."""
  try:
    with open(path, 'rb') as f:
      f.seek(0, os.SEEK_END)
      f.seek(max(0, f.tell() - 8192))
      lines = f.read().decode('utf-8', 'replace').splitlines()
  except OSError:
    return ''
  for line in reversed(lines):
    if line.startswith(('step ', '--- ', 'validation at', 'final evaluation')):
      return line.strip()
  return ''


def run_jobs(jobs, parallel, log=print, env=None, poll_s=0.5, progress_every_s=PROGRESS_EVERY_S):
  """Runs `jobs`, at most `parallel` at a time, and waits for them all.

  Each process gets `TF_NUM_INTRAOP_THREADS` (and OMP's) from `threads_per_job` unless `env`
  sets them. An interrupt (Ctrl-C) terminates the running processes (their runs resume from
  their checkpoints when started again) and is raised again.

  Returns:
    [Outcome] in the order of `jobs`.

  Raises:
    FanoutError: a job exited non-zero (after every job has ended).
  """
  jobs = list(jobs)
  parallel = max(1, int(parallel))
  base = dict(os.environ if env is None else env)
  threads = str(threads_per_job(min(parallel, len(jobs)) if jobs else 1))
  for k in ('TF_NUM_INTRAOP_THREADS', 'OMP_NUM_THREADS'):
    base.setdefault(k, threads)
  base.setdefault('TF_NUM_INTEROP_THREADS', '1')
  pending, running, done = list(jobs), {}, {}
  last_progress = time.time()
  try:
    while pending or running:
      while pending and len(running) < parallel:
        job = pending.pop(0)
        job.log.parent.mkdir(parents=True, exist_ok=True)
        out = open(job.log, 'ab')  # pylint: disable=consider-using-with
        proc = subprocess.Popen(list(job.argv), stdout=out, stderr=subprocess.STDOUT, env=base)
        running[job.name] = (job, proc, out, time.time())
        log(f'[{job.name}] started (log: {job.log})')
      for name, (job, proc, out, t0) in list(running.items()):
        if proc.poll() is None:
          continue
        out.close()
        wall = time.time() - t0
        done[name] = Outcome(job, proc.returncode, wall)
        del running[name]
        state = 'done' if proc.returncode == 0 else f'FAILED (exit {proc.returncode})'
        log(f'[{name}] {state} in {text.hms(wall)} (log: {job.log})')
      if running and time.time() - last_progress >= progress_every_s:
        last_progress = time.time()
        for name, (job, _, _, t0) in running.items():
          log(f'[{name}] {text.hms(time.time() - t0)}: {_last_progress(job.log) or "starting"}')
      if running:
        time.sleep(poll_s)
  except BaseException:
    for job, proc, out, _ in running.values():
      proc.terminate()
    for job, proc, out, _ in running.values():
      try:
        proc.wait(timeout=30)
      except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
      out.close()
    raise
  outcomes = [done[j.name] for j in jobs]
  failed = [o for o in outcomes if o.returncode != 0]
  if failed:
    raise FanoutError(f'{len(failed)} of {len(outcomes)} runs failed: ' + '; '.join(
        f'{o.job.name} (exit {o.returncode}, log {o.job.log})' for o in failed))
  return outcomes
