"""Ctrl-C and a scheduler's SIGTERM during training, taken at a step boundary.

Python turns SIGINT into a KeyboardInterrupt raised wherever the main thread happens to run
Python code. During training that is often inside a TensorFlow finaliser (`__del__` of a
function, tensor or resource deleter) or a weakref callback, where an exception is printed as
"Exception ignored in ..." and dropped: the run goes on as if nothing had been pressed.
`deferred()` instead records the first SIGINT or SIGTERM (and which) and the loop stops itself
after the current step, with a checkpoint of it; a second Ctrl-C raises at once, for a user who
does not want to wait.

SIGTERM is how a scheduler (SLURM, Kubernetes, a preemptible VM) ends a job, with a grace
period before SIGKILL. Its time is bounded: a watchdog started by the handler prints one line
and ends the process with status 143 if the loop has not stopped `grace_s()` seconds
(`$TF_MULTINCA_PREEMPT_GRACE_S`, default 25: under the usual 30 s of Kubernetes and SLURM) after
the signal; a second SIGTERM does the same at once. Ctrl-C has no watchdog: the user at the
terminal presses it again.
"""

import contextlib
import os
import signal
import sys
import threading

from tf_multinca import errors

GRACE_ENV = 'TF_MULTINCA_PREEMPT_GRACE_S'  # seconds from SIGTERM to a forced exit
DEFAULT_GRACE_S = 25.0
SIGTERM_STATUS = 128 + signal.SIGTERM  # 143, the shell's status of a process SIGTERM ended


class GraceError(errors.Error, ValueError):
  """A `$TF_MULTINCA_PREEMPT_GRACE_S` that is not a positive number of seconds."""


def grace_s():
  """The seconds from SIGTERM to a forced exit: `$TF_MULTINCA_PREEMPT_GRACE_S`, default 25.

  Raises:
    GraceError: not a positive number.
  """
  text = os.environ.get(GRACE_ENV, '')
  try:
    value = float(text) if text.strip() else DEFAULT_GRACE_S
  except ValueError:
    value = -1.0
  if not value > 0:
    raise GraceError(f'{GRACE_ENV} must be a positive number of seconds, got {text!r}')
  return value


class Request:
  """Which signal (SIGINT or SIGTERM) arrived first inside `deferred()`, if any."""

  def __init__(self):
    self.signal = None  # the first signal's number

  @property
  def requested(self):
    """Whether a signal arrived."""
    return self.signal is not None

  @property
  def name(self):
    """'SIGINT', 'SIGTERM', or '' when none arrived."""
    return signal.Signals(self.signal).name if self.requested else ''

  def check(self):
    """Raises KeyboardInterrupt if a signal arrived (call it at a safe point)."""
    if self.requested:
      raise KeyboardInterrupt


def _force_exit(line):
  """Prints `line` and ends the process at once with status 143 (from any thread)."""
  try:
    print(line, file=sys.stderr, flush=True)
    sys.stdout.flush()
  finally:
    os._exit(SIGTERM_STATUS)  # pylint: disable=protected-access


@contextlib.contextmanager
def deferred(expired=None):
  """Within the block, the first SIGINT or SIGTERM sets `Request.signal`; a second SIGINT
  raises KeyboardInterrupt at once, a second SIGTERM or the end of the grace period (`grace_s`)
  after the first one prints a line and exits with status 143.

  Each handler is installed only where Python's own one is (the main thread; SIGINT's default
  KeyboardInterrupt handler, SIGTERM's default action, neither ignored nor taken over by the
  caller): a run launched in the background of a script, with SIGINT ignored, stays deaf to
  it, and an embedding application keeps its handlers. The previous handlers are restored, and
  the watchdog stopped, on exit.

  Args:
    expired: a callable taking what happened ('SIGTERM received twice: ...', 'not stopped
      within 25 s of SIGTERM ...') and returning the line printed before the forced exit; it
      runs on the watchdog's thread, so it must not wait for the main one. None: a plain line.

  Yields:
    A `Request`.

  Raises:
    GraceError: a bad `$TF_MULTINCA_PREEMPT_GRACE_S`.
  """
  request = Request()
  grace = grace_s()
  wanted = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
  if threading.current_thread() is not threading.main_thread():
    wanted = {}
  ours = [s for s, default in wanted.items() if signal.getsignal(s) is default]
  watchdog = []

  def expire(how):
    _force_exit(expired(how) if expired is not None else
                f'{how}; exiting with status {SIGTERM_STATUS}')

  def on_signal(signum, frame):
    del frame
    if signum != signal.SIGTERM:
      if request.requested:
        raise KeyboardInterrupt
      request.signal = signum
      return
    if request.signal == signal.SIGTERM:
      expire('SIGTERM received twice: not waiting for the step to end')
    request.signal = signum  # a scheduler's stop outranks an earlier Ctrl-C
    timer = threading.Timer(grace, expire, args=(f'not stopped within {grace:g} s of SIGTERM '
                                                 f'(${GRACE_ENV})',))
    timer.daemon = True
    timer.start()
    watchdog.append(timer)

  previous = {s: signal.signal(s, on_signal) for s in ours}
  try:
    yield request
  finally:
    for timer in watchdog:
      timer.cancel()
    for s, handler in previous.items():
      signal.signal(s, handler)
