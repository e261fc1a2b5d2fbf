"""The base class of every error tf_multinca raises on purpose.

The binaries catch `Error` only: it means bad input or a state the user can fix, and its
message says how (one line, exit 2). Anything else is a bug and keeps its traceback.
"""


class Error(Exception):
  """An error of ours: bad input, a missing file, a run that cannot go on. The message names
  what was wrong and how to fix it. `exit_code` is the binaries' exit status for it."""
  exit_code = 2
