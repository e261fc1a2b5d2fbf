"""Ctrl-C during training, taken at a step boundary so that it cannot be lost.

Python turns SIGINT into a KeyboardInterrupt raised wherever the main thread happens to run
Python code. During training that is often inside a TensorFlow finaliser (`__del__` of a
function, tensor or resource deleter) or a weakref callback, where an exception is printed as
"Exception ignored in ..." and dropped: the run goes on as if nothing had been pressed.
`deferred()` instead records the first Ctrl-C and the loop raises KeyboardInterrupt itself
after the current step; a second Ctrl-C raises at once, for a user who does not want to wait.
"""

import contextlib
import signal
import threading


class Request:
  """Whether Ctrl-C was pressed inside `deferred()`."""

  def __init__(self):
    self.requested = False

  def check(self):
    """Raises KeyboardInterrupt if Ctrl-C was pressed (call it at a safe point)."""
    if self.requested:
      raise KeyboardInterrupt


@contextlib.contextmanager
def deferred():
  """Within the block, the first SIGINT sets `Request.requested`, a second raises at once.

  The handler is installed only where Python's own one is (the main thread, SIGINT not ignored
  or taken over by the caller): a run launched in the background of a script, with SIGINT
  ignored, stays deaf to it, and an embedding application keeps its handler. The previous
  handler is restored on exit.

  Yields:
    A `Request`.
  """
  request = Request()
  if (threading.current_thread() is not threading.main_thread()
      or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
    yield request
    return

  def on_sigint(signum, frame):
    del signum, frame
    if request.requested:
      raise KeyboardInterrupt
    request.requested = True

  previous = signal.signal(signal.SIGINT, on_sigint)
  try:
    yield request
  finally:
    signal.signal(signal.SIGINT, previous)
