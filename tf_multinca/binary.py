"""What every `tools/` binary shares: flag errors as one line, and the documented exit statuses.

    run = binary.entry(main)   # the console script's entry point

    if __name__ == '__main__':
      run()

Exit statuses: 0 done; 2 bad input or a state the user can fix (a flag, an `errors.Error`, a
file system error, a training workdir another process is writing: one line on stderr naming
what was wrong and how to fix it); 3 a diverged loss; 4 a lost worker of a multi-worker job
(rerun every worker to resume); 5 a full file system (one line: the file, the space left, the
checkpoint a rerun resumes from); 130 interrupted (Ctrl-C; training stops at the next step
boundary with a checkpoint of it, a second Ctrl-C at once); 143 preempted (SIGTERM; training
stops likewise, and the process exits with 143 anyway `$TF_MULTINCA_PREEMPT_GRACE_S` seconds,
default 25, after the signal). Anything else is a bug and keeps its traceback.
"""

import logging as std_logging
import pathlib
import sys

from absl import app
from absl import flags
from absl import logging

from tf_multinca import errors
from tf_multinca import fileio


def _error(message, status):
  print(f'error: {message}' if status == 2 else str(message), file=sys.stderr)
  return status


_HELP = ('--help', '-h', '-?', '--helpshort', '--helpfull', '--helpxml')


def _parse(argv):
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    sys.exit(_error(f'{e} (--help lists the flags)', 2))
  except SystemExit as e:
    # absl prints the help, then exits 1; asking for help is not an error.
    if e.code == 1 and any(a in _HELP for a in argv[1:]):
      sys.exit(0)
    raise


def directory_path(value):
  """Whether `value` (None: unset) can be an output directory: neither it nor a folder above it
  is a file. A flag validator, so such a flag is one line, not a raw [Errno 17] / [Errno 20]."""
  if value is None:
    return True
  path = pathlib.Path(value).expanduser()
  return not any(p.exists() and not p.is_dir() for p in (path, *path.parents))


def run(main, module=None):
  """`absl.app.run(main)` with our exit statuses (see the module docstring).

  Args:
    main: the binary's main(argv).
    module: the name of the module defining its flags: they are made the key flags of the
      main module (what absl's --help lists), whether it runs as `python -m tools.X` or as an
      installed console script.
  """
  if module is not None:
    for flag in flags.FLAGS.get_key_flags_for_module(module):
      flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)

  def wrapped(argv):
    if not flags.FLAGS['verbosity'].present:
      # Our own lines only: absl's and TensorFlow's INFO chatter (checkpoint sharding, assets
      # written) unless --verbosity asks for it; `quiet` did the same for TF's C++ logs.
      logging.set_verbosity(logging.WARNING)
      std_logging.getLogger('tensorflow').setLevel(std_logging.WARNING)
    try:
      return main(argv) or 0
    except app.UsageError as e:
      return _error(f'{e} (--help lists the flags)', 2)
    except errors.Error as e:
      return _error(e, e.exit_code)
    except OSError as e:
      if fileio.is_disk_full(e):  # a write outside fileio's (which raise DiskFullError)
        full = fileio.DiskFullError(fileio.full_path(e) or '.')
        return _error(full, full.exit_code)
      return _error(e, 2)
    except KeyboardInterrupt:
      return _error('interrupted', 130)

  app.run(wrapped, flags_parser=_parse)


def entry(main):
  """The entry point of a binary whose `main` is given: `run()` calls `run(main, module)`."""
  return lambda: run(main, main.__module__)
