"""Quiets TensorFlow's C++ start-up log lines when one of our binaries runs, unless asked.

TensorFlow prints 6-8 lines (oneDNN, CPU features, CUDA probes) on import, before any flag is
parsed; a binary's user wants its own output. The import-time lines come from absl's C++ logging
before it is initialised, which no threshold filters (abseil-cpp#1718): they are sent to
/dev/null while TensorFlow is imported; `TF_CPP_MIN_LOG_LEVEL` quiets the later ones (XLA and
CUDA probes at the first op). This runs before TensorFlow is imported (from the package's
`__init__`), only for our binaries (`python -m tools.X`, `python -m
tf_multinca.apps.X`, the `tf-multinca-X` console scripts). A run with `--verbosity` / `-v`
(absl's flag) or `TF_CPP_MIN_LOG_LEVEL=0` logs as TensorFlow always does; a level the user set
is kept. Library users are never affected.
"""

import importlib
import os
import sys

LEVEL = '3'  # TF_CPP_MIN_LOG_LEVEL: only fatal C++ messages


def running_binary(argv=None, main=None):
  """Whether the program is one of our binaries (see the module docstring)."""
  argv = sys.argv if argv is None else argv
  main = sys.modules.get('__main__') if main is None else main
  spec = getattr(main, '__spec__', None)
  name = getattr(spec, 'name', '') or ''
  script = os.path.basename(argv[0]) if argv else ''
  return name.startswith(('tools.', 'tf_multinca.apps.')) or script.startswith('tf-multinca-')


def verbosity_asked(argv=None):
  """Whether absl's --verbosity (or -v) is on the command line."""
  argv = sys.argv if argv is None else argv
  return any(a in ('-v', '--verbosity') or a.startswith(('-v=', '--verbosity=', '--v='))
             for a in argv[1:])


def apply(argv=None, main=None, environ=None):
  """For a binary run without --verbosity: sets `TF_CPP_MIN_LOG_LEVEL` (unless it is set) and
  returns whether TensorFlow's import should be quiet too (not when the user's level is 0)."""
  environ = os.environ if environ is None else environ
  if not running_binary(argv, main) or verbosity_asked(argv):
    return False
  level = environ.setdefault('TF_CPP_MIN_LOG_LEVEL', LEVEL)
  return level.strip() not in ('', '0')


def import_tensorflow():
  """Imports TensorFlow with file descriptor 2 (stderr) pointed at /dev/null, so the C++
  libraries' start-up lines are not shown; Python errors still raise (and print after)."""
  sys.stderr.flush()
  saved = os.dup(2)
  devnull = os.open(os.devnull, os.O_WRONLY)
  try:
    os.dup2(devnull, 2)
    importlib.import_module('tensorflow')
  finally:
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)
