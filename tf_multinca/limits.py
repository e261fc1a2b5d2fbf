"""Memory estimates checked before allocating: a request too large gets one clear error.

The figures are per grid cell and deliberately round: they only need to tell a run that fits
from one that would be killed by the kernel (exit 137, no message).
"""

import os

from tf_multinca import errors

# Floats a cell of a rollout step holds at its peak: the state and its update (2 x 17), the
# perception (48), the hidden layer (128), the rule's output (16), masks and copies.
STEP_FLOATS_PER_CELL = 256
# The share of the available memory a single request may take.
SHARE = 0.8


class MemoryLimitError(errors.Error, ValueError):
  """A request whose estimated memory exceeds what this machine has available."""


def available_bytes():
  """Memory available to a new allocation: MemAvailable of /proc/meminfo, else physical."""
  try:
    with open('/proc/meminfo', encoding='ascii') as f:
      for line in f:
        if line.startswith('MemAvailable:'):
          return int(line.split()[1]) * 1024
  except (OSError, ValueError, IndexError):
    pass
  try:
    return os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
  except (ValueError, OSError, AttributeError):
    return 1 << 62  # unknown: do not refuse


def rollout_bytes(batch, grid, channels, kept_states=0, steps_kept=1):
  """Estimated bytes of a rollout of `batch` samples on a `grid` x `grid` grid: the working set
  of `steps_kept` steps (1 for inference, the rollout length under a gradient tape) plus
  `kept_states` stored states."""
  cells = batch * grid * grid
  return 4 * cells * (STEP_FLOATS_PER_CELL * steps_kept + channels * kept_states)


def check(nbytes, what, hint):
  """Raises MemoryLimitError when `nbytes` exceeds `SHARE` of the available memory.

  Args:
    nbytes: the estimate.
    what: the request, e.g. '--seeds=100000 on a 48x48 grid'.
    hint: how to make it fit, e.g. 'use fewer --seeds'.
  """
  limit = SHARE * available_bytes()
  if nbytes > limit:
    raise MemoryLimitError(f'{what} needs about {nbytes / 2**30:.1f} GiB, more than the '
                           f'{limit / 2**30:.1f} GiB this machine has available; {hint}')
  return nbytes
