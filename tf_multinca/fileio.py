"""Atomic file writes: a crash or a bad input never leaves a half-written file.

A write that finds its file system full raises `DiskFullError`: one line naming the file, the
space left and what to do (exit status 5 in the binaries), the temporary removed.
"""

import errno
import json
import os
import pathlib
import re
import shutil
import tempfile

from tf_multinca import errors
from tf_multinca import text as text_lib

# Names of the temporaries below ('.<name>.<random>[.old.<random>][suffix]') and of TF's own
# checkpoint temporaries ('ckpt-N_temp...'): what a killed writer leaves behind.
_TEMPORARY = re.compile(r'\..+\.[a-z0-9_]{8}(\..*)?|ckpt-\d+_temp.*')


# What TensorFlow's and h5py's errors say when the file system is full (they carry no errno).
_NO_SPACE = os.strerror(errno.ENOSPC)  # 'No space left on device'


class DiskFullError(errors.Error, OSError):
  """A write found its file system full. The message names the file, the space left on its
  file system and `then` (what to do once there is space); `path` and `free` (bytes) say
  the same."""
  exit_code = 5

  def __init__(self, path, then='rerun the same command'):
    self.path = pathlib.Path(path)
    self.free = free_bytes(self.path)
    super().__init__(f'no space left on device writing {self.path} ({text_lib.size(self.free)} '
                     f'free on its file system); free space, then {then}')
    self.errno = errno.ENOSPC


def is_disk_full(error):
  """Whether exception `error` (or one it was raised from) says the file system is full: an
  OSError with errno ENOSPC, or a TensorFlow or h5py error whose message says so."""
  seen = set()
  while error is not None and id(error) not in seen:
    seen.add(id(error))
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
      return True
    if _NO_SPACE in str(error):
      return True
    error = error.__cause__ or error.__context__
  return False


def full_path(error):
  """The file a disk-full `error` names (its `path` or `filename`, else the first absolute
  path before TensorFlow's 'No space left on device'), or None."""
  for name in ('path', 'filename'):
    if getattr(error, name, None):
      return pathlib.Path(getattr(error, name))
  found = re.search(r'(/[^\s;:,\'"]+)[^/]*?' + re.escape(_NO_SPACE), str(error))
  return pathlib.Path(found.group(1)) if found else None


def free_bytes(path):
  """Free bytes on the file system of `path` (or of its nearest existing parent); None if it
  cannot be read."""
  path = pathlib.Path(path).absolute()
  for p in (path, *path.parents):
    if p.exists():
      try:
        return shutil.disk_usage(p).free
      except OSError:
        return None
  return None


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
  except BaseException as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    if isinstance(e, Exception) and is_disk_full(e):
      raise DiskFullError(path) from e
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
  except BaseException as e:
    shutil.rmtree(tmp, ignore_errors=True)
    if isinstance(e, Exception) and is_disk_full(e):
      raise DiskFullError(path) from e
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
