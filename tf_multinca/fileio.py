"""Atomic file writes: a crash or a bad input never leaves a half-written file."""

import json
import os
import pathlib
import re
import shutil
import tempfile

# Names of the temporaries below ('.<name>.<random>[.old.<random>][suffix]') and of TF's own
# checkpoint temporaries ('ckpt-N_temp...'): what a killed writer leaves behind.
_TEMPORARY = re.compile(r'\..+\.[a-z0-9_]{8}(\..*)?|ckpt-\d+_temp.*')


def write_text(path, text):
  """Writes `text` to `path` through a temporary file in the same directory."""
  return write_file(path, lambda tmp: pathlib.Path(tmp).write_text(text, encoding='utf-8'))


def write_json(path, obj):
  """Writes `obj` as indented JSON, atomically."""
  return write_text(path, json.dumps(obj, indent=1, sort_keys=True, ensure_ascii=False) + '\n')


def write_file(path, save, suffix=''):
  """Calls `save(tmp_path)` then moves the file into place; `suffix` ends the temporary name
  (Keras insists on `.weights.h5`)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix='.' + path.name + '.', suffix=suffix)
  os.close(fd)
  os.remove(tmp)  # some writers refuse an existing file
  try:
    save(tmp)
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return path


def write_dir(path, save):
  """Calls `save(tmp_dir)` then swaps the directory into place (SavedModels)."""
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = pathlib.Path(tempfile.mkdtemp(dir=path.parent, prefix='.' + path.name + '.'))
  try:
    save(str(tmp))
    replace_dir(tmp, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  return path


def replace_dir(src, path):
  """Swaps the finished directory `src` into `path` (same file system) by two renames: `path`
  is always the whole old directory or the whole new one, never a mix, and is missing only
  between the renames (a crash there leaves the old one under a temporary name, which
  `remove_temporaries` clears)."""
  path = pathlib.Path(path)
  old = None
  if path.exists():
    old = pathlib.Path(tempfile.mkdtemp(dir=path.parent, prefix='.' + path.name + '.old.'))
    os.rmdir(old)
    os.replace(path, old)
  try:
    os.replace(src, path)
  except BaseException:
    if old is not None and not path.exists():
      os.replace(old, path)
    raise
  if old is not None:
    shutil.rmtree(old, ignore_errors=True)
  return path


def remove_temporaries(*directories):
  """Removes what killed writers left in `directories` (not recursively): the temporaries of
  `write_file` / `write_dir` and TF's `ckpt-N_temp` directories. Returns the removed paths."""
  removed = []
  for d in directories:
    d = pathlib.Path(d)
    if not d.is_dir():
      continue
    for p in sorted(d.iterdir()):
      if not _TEMPORARY.fullmatch(p.name):
        continue
      if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
      else:
        p.unlink(missing_ok=True)
      removed.append(p)
  return removed
