"""Ctrl-C and SIGTERM during training are taken between steps (tf_multinca.training.interrupt)."""

import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import pytest

from tf_multinca.training import interrupt


def _ctrl_c():
  os.kill(os.getpid(), signal.SIGINT)


@pytest.fixture(autouse=True)
def python_handler():
  """Python's own SIGINT handler, as in a terminal, whatever launched the test runner (in the
  background of a script SIGINT starts ignored)."""
  previous = signal.signal(signal.SIGINT, signal.default_int_handler)
  yield
  signal.signal(signal.SIGINT, previous)


def test_the_first_ctrl_c_is_recorded_and_raised_at_the_check():
  with interrupt.deferred() as ctrl_c:
    ctrl_c.check()  # nothing pressed: no exception
    _ctrl_c()
    assert ctrl_c.requested  # recorded, not raised where the signal arrived
    with pytest.raises(KeyboardInterrupt):
      ctrl_c.check()
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_raises_at_once():
  with interrupt.deferred():
    _ctrl_c()
    with pytest.raises(KeyboardInterrupt):
      _ctrl_c()
  assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_ctrl_c_in_a_finaliser_is_not_lost():
  # What the loop meets: Python raises the KeyboardInterrupt inside whatever Python code runs,
  # and one raised in __del__ is printed and dropped.
  class Finalised:
    def __del__(self):
      _ctrl_c()

  with interrupt.deferred() as ctrl_c:
    Finalised()
    with pytest.raises(KeyboardInterrupt):
      ctrl_c.check()


def test_an_ignored_or_foreign_handler_is_left_alone():
  seen = []
  previous = signal.signal(signal.SIGINT, lambda *a: seen.append(1))
  try:
    with interrupt.deferred() as ctrl_c:
      _ctrl_c()
      assert seen == [1] and not ctrl_c.requested
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with interrupt.deferred() as ctrl_c:
      _ctrl_c()  # ignored, as for a run in the background of a script
      assert not ctrl_c.requested
  finally:
    signal.signal(signal.SIGINT, previous)


def test_off_the_main_thread_nothing_is_installed():
  out = []

  def body():
    with interrupt.deferred() as ctrl_c:
      out.append((signal.getsignal(signal.SIGINT), ctrl_c.requested))

  t = threading.Thread(target=body)
  t.start()
  t.join()
  assert out == [(signal.default_int_handler, False)]


# ----------------------------------------------------------------------------------------------
# SIGTERM: a scheduler's preemption, taken at the same boundary, its time bounded.

@pytest.fixture
def default_sigterm(monkeypatch):
  """SIGTERM at its default action, as in a job a scheduler started, and a long grace period
  (the watchdog must not end the test runner)."""
  monkeypatch.setenv(interrupt.GRACE_ENV, '600')
  previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
  yield
  signal.signal(signal.SIGTERM, previous)


def test_sigterm_is_recorded_with_its_name(default_sigterm):
  with interrupt.deferred() as stop:
    assert not stop.requested and stop.name == ''
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.signal == signal.SIGTERM and stop.name == 'SIGTERM'
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sigterm_outranks_an_earlier_ctrl_c(default_sigterm):
  with interrupt.deferred() as stop:
    _ctrl_c()
    assert stop.name == 'SIGINT'
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.name == 'SIGTERM'


def test_a_foreign_sigterm_handler_is_left_alone(default_sigterm):
  seen = []
  signal.signal(signal.SIGTERM, lambda *a: seen.append(1))
  with interrupt.deferred() as stop:
    os.kill(os.getpid(), signal.SIGTERM)
    assert seen == [1] and not stop.requested


@pytest.mark.parametrize('value', ['0', '-3', 'soon'])
def test_a_bad_grace_period_is_refused(monkeypatch, value):
  monkeypatch.setenv(interrupt.GRACE_ENV, value)
  with pytest.raises(interrupt.GraceError, match=interrupt.GRACE_ENV):
    with interrupt.deferred():
      pass


_STUCK = r'''
import os, signal, sys, time
from tf_multinca.training import interrupt
with interrupt.deferred(expired=lambda how: f'gave up: {how}') as stop:
  os.kill(os.getpid(), signal.SIGTERM)
  if sys.argv[1] == 'twice':
    os.kill(os.getpid(), signal.SIGTERM)
  time.sleep(60)  # a step that never ends
'''


@pytest.mark.parametrize('how,line', [
    ('once', 'gave up: not stopped within 0.5 s of SIGTERM ($TF_MULTINCA_PREEMPT_GRACE_S)'),
    ('twice', 'gave up: SIGTERM received twice: not waiting for the step to end'),
])
def test_a_stuck_step_ends_with_143_after_the_grace_period(how, line):
  t = time.time()
  p = subprocess.run([sys.executable, '-c', _STUCK, how], capture_output=True, text=True,
                     timeout=120, env=dict(os.environ, TF_MULTINCA_PREEMPT_GRACE_S='0.5',
                                           TF_CPP_MIN_LOG_LEVEL='3'),
                     cwd=pathlib.Path(__file__).resolve().parents[1])
  assert p.returncode == 143, p.stderr[-2000:]
  assert p.stderr.strip().splitlines()[-1] == line
  assert time.time() - t < 50  # not the 60 s sleep
