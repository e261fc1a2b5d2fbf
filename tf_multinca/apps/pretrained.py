r"""Lists, fetches and verifies the published pretrained models and targets.

Usage:
  python -m tools.pretrained list [--kind=model]   # name, format, convention, role, organism
  python -m tools.pretrained fetch [names...]      # default: every entry
  python -m tools.pretrained verify [names...]     # exit 1 listing any failure

Files come from $TF_MULTINCA_MIRROR when it is set, else from their URLs; they are cached in
--cache_dir ($TF_MULTINCA_CACHE, default ~/.cache/tf_multinca).
"""

import os
import sys

from absl import app
from absl import flags

from tf_multinca import binary

# Before TensorFlow loads: its start-up chatter would bury the table.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
from tf_multinca import pretrained  # pylint: disable=g-import-not-at-top,wrong-import-position

FLAGS = flags.FLAGS
flags.DEFINE_string('cache_dir', None, 'Cache directory; default $TF_MULTINCA_CACHE or '
                    '~/.cache/tf_multinca.')
flags.DEFINE_string('kind', None, 'Only entries of this kind (model, image, archive, license), '
                    'format, role or convention.')

COMMANDS = ('list', 'fetch', 'verify')
COLUMNS = ('name', 'format', 'convention', 'role', 'organism')


def _selected(names):
  if names:
    return [pretrained.get(n) for n in names]
  return pretrained.entries(FLAGS.kind)


def list_entries(entries):
  """Prints a table of the entries."""
  rows = [COLUMNS] + [tuple(getattr(e, c) or '-' for c in COLUMNS) for e in entries]
  widths = [max(len(str(r[i])) for r in rows) for i in range(len(COLUMNS))]
  for r in rows:
    print('  '.join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip())


def run_command(command, entries, cache_dir=None):
  """Fetches or verifies `entries`; returns the list of (name, error message) failures."""
  failures = []
  for e in entries:
    try:
      if command == 'fetch':
        print(f'{e.name}: {pretrained.fetch(e, cache_dir)}')
      else:
        pretrained.verify(e, cache_dir)
        print(f'ok  {e.name}')
    except (pretrained.FetchError, pretrained.ManifestError) as err:
      print(f'FAIL {e.name}: {err}')
      failures.append((e.name, str(err)))
  return failures


def main(argv):
  if len(argv) < 2 or argv[1] not in COMMANDS:
    raise app.UsageError(f'expected a command: {" | ".join(COMMANDS)} [names...]')
  command, names = argv[1], argv[2:]
  try:
    entries = _selected(names)
  except (pretrained.UnknownEntryError, ValueError) as err:
    print(f'error: {err}', file=sys.stderr)
    sys.exit(2)
  if command == 'list':
    list_entries(entries)
    return
  failures = run_command(command, entries, FLAGS.cache_dir)
  if failures:
    print(f'\n{len(failures)} of {len(entries)} failed:', file=sys.stderr)
    for name, err in failures:
      print(f'  {name}: {err}', file=sys.stderr)
    sys.exit(1)
  print(f'{len(entries)} entries {"fetched" if command == "fetch" else "verified"}')



run = binary.entry(main)  # the console script's entry point


if __name__ == '__main__':
  run()
