"""Ctrl-C during training is taken between steps (tf_multinca.training.interrupt)."""

import os
import signal
import threading

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
