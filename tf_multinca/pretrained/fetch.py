"""Fetching published files into a local cache, sha256-verified.

A file is looked up, in order:

1. in the cache (`$TF_MULTINCA_CACHE`, default `~/.cache/tf_multinca`), at
   `<cache>/<host>/<path>` of its URL; a cached file is re-verified (size + sha256) before use,
   and a corrupt one is deleted and fetched again;
2. in a mirror, when `$TF_MULTINCA_MIRROR` is set: `<mirror>/<host>/<path>` (copied into the
   cache; nothing is downloaded);
3. by downloading its URL with `requests` (streamed, with timeouts and retries).

Every copy is written to a temporary file in the destination directory, verified, then moved in
place with `os.replace`, so the cache never holds a partial or unverified file. Checkpoints that
live inside a zip are extracted, each file verified, into `<cache>/extracted/<name>/`.
"""

import hashlib
import os
import socket
import pathlib
import tempfile
import time
import urllib.parse
import zipfile

import requests

from tf_multinca import errors
from tf_multinca.pretrained import manifest as manifest_lib

CACHE_ENV = 'TF_MULTINCA_CACHE'
MIRROR_ENV = 'TF_MULTINCA_MIRROR'
DEFAULT_CACHE = pathlib.Path('~/.cache/tf_multinca')

_CHUNK = 1 << 16
# Statuses worth another try: the server or a proxy may recover.
_TRANSIENT_STATUS = (408, 425, 429, 500, 502, 503, 504)


class FetchError(errors.Error, OSError):
  """A file that could not be obtained (missing from the mirror, HTTP error, network failure)."""


class ChecksumError(FetchError):
  """A file whose size or sha256 is not the manifest's; it was not kept."""

  def __init__(self, name, source, expected_sha256, got_sha256, expected_size, got_size):
    self.name, self.source = name, source
    self.expected_sha256, self.got_sha256 = expected_sha256, got_sha256
    self.expected_size, self.got_size = expected_size, got_size
    super().__init__(
        f'checksum mismatch for {name} from {source}: expected sha256 {expected_sha256} '
        f'({expected_size} bytes), got sha256 {got_sha256} ({got_size} bytes); the file was '
        'not kept')


def cache_root(cache_dir=None):
  """The cache directory: `cache_dir`, else $TF_MULTINCA_CACHE, else ~/.cache/tf_multinca."""
  root = cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE
  return pathlib.Path(root).expanduser()


def url_path(url):
  """'https://host/a/b%25.pt' -> PurePosixPath('host/a/b%.pt') (decoded, relative).

  Raises:
    FetchError: a URL without a host, or whose path would leave the cache or mirror.
  """
  parts = urllib.parse.urlsplit(url)
  rel = urllib.parse.unquote(parts.path).lstrip('/')
  p = pathlib.PurePosixPath(parts.hostname or '', rel)
  if not parts.hostname or not rel or any(s in ('..', '.', '') for s in p.parts):
    raise FetchError(f'refused URL {url!r}: it needs a host and a plain relative path')
  return p


def cache_path(entry, cache_dir=None):
  """Where `entry`'s file lives in the cache (for a checkpoint in a zip: its prefix)."""
  entry = manifest_lib.get(entry)
  if entry.in_archive:
    return _extract_dir(entry, cache_dir) / pathlib.PurePosixPath(entry.member).name
  return cache_root(cache_dir).joinpath(*url_path(entry.url).parts)


def _digest(path):
  """(sha256 hex, size) of a file."""
  h = hashlib.sha256()
  size = 0
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      h.update(chunk)
      size += len(chunk)
  return h.hexdigest(), size


def _matches(path, sha256, size):
  """Whether the file at `path` has this size and sha256 (size first: it is free)."""
  try:
    if path.stat().st_size != size:
      return False
  except OSError:
    return False
  return _digest(path)[0] == sha256


class _Sink:
  """A temp file next to `dest`, hashed as it is written; `commit` verifies and moves it in place.

  Used as a context manager: leaving it without a successful `commit` deletes the temp file.
  """

  def __init__(self, dest, name, sha256, size):
    self.dest, self.name, self.sha256, self.size = pathlib.Path(dest), name, sha256, size
    self.dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=self.dest.parent, prefix=f'.{self.dest.name}.',
                               suffix='.part')
    self.tmp = pathlib.Path(tmp)
    self.file = os.fdopen(fd, 'wb')
    self.reset()

  def reset(self):
    """Discards what was written (before a retry)."""
    self.file.seek(0)
    self.file.truncate()
    self.hash, self.written = hashlib.sha256(), 0

  def write(self, chunk, source):
    self.file.write(chunk)
    self.hash.update(chunk)
    self.written += len(chunk)
    if self.written > self.size:
      # Stop early: a wrong file can be arbitrarily large.
      raise ChecksumError(self.name, source, self.sha256, '(not computed: too long)', self.size,
                          f'more than {self.written}')

  def commit(self, source):
    self.file.close()
    got = self.hash.hexdigest()
    if got != self.sha256 or self.written != self.size:
      raise ChecksumError(self.name, source, self.sha256, got, self.size, self.written)
    os.replace(self.tmp, self.dest)
    return self.dest

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    if not self.file.closed:
      self.file.close()
    self.tmp.unlink(missing_ok=True)  # gone already after a commit


def _copy_from_mirror(entry, mirror, dest):
  src = pathlib.Path(mirror).expanduser().joinpath(*url_path(entry.url).parts)
  if not src.is_file():
    raise FetchError(f'{entry.name} is not in the mirror ${MIRROR_ENV}={mirror}: no file {src}. '
                     f'Unset {MIRROR_ENV} to download {entry.url}')
  with _Sink(dest, entry.name, entry.sha256, entry.size) as sink, open(src, 'rb') as f:
    for chunk in iter(lambda: f.read(_CHUNK), b''):
      sink.write(chunk, str(src))
    return sink.commit(str(src))


def _download(entry, dest, retries, backoff, timeout):
  """Streams `entry.url` into `dest`, retrying network failures `retries` times."""
  last = None
  with _Sink(dest, entry.name, entry.sha256, entry.size) as sink:
    for attempt in range(retries + 1):
      if attempt:
        time.sleep(backoff * 2 ** (attempt - 1))
        sink.reset()
      try:
        with requests.get(entry.url, stream=True, timeout=timeout) as r:
          if r.status_code in _TRANSIENT_STATUS:
            last = f'HTTP {r.status_code} {r.reason}'
            continue
          if r.status_code != 200:
            raise FetchError(f'cannot download {entry.name}: {entry.url} answered HTTP '
                             f'{r.status_code} {r.reason}')
          for chunk in r.iter_content(_CHUNK):
            sink.write(chunk, entry.url)
      except (requests.ConnectionError, requests.Timeout,
              requests.exceptions.ChunkedEncodingError,
              requests.exceptions.ContentDecodingError) as e:
        if _no_such_host(e):
          # No DNS (an offline machine): retrying cannot help, say so at once.
          raise FetchError(
              f'cannot download {entry.name}: the host of {entry.url} cannot be resolved (no '
              f'network?). Offline, set ${MIRROR_ENV} to a mirror of the published files laid '
              'out as <dir>/<host>/<path>') from None
        # A dropped connection or a body shorter than its Content-Length: try again.
        last = f'{type(e).__name__}: {str(e)[:200]}'
        continue
      return sink.commit(entry.url)
  raise FetchError(f'cannot download {entry.name} from {entry.url} after {retries + 1} attempts: '
                   f'{last}. Offline, set ${MIRROR_ENV} to a mirror of the published files')


def _no_such_host(error):
  """Whether a requests error comes from a failed name resolution (socket.gaierror)."""
  seen, e = set(), error
  while e is not None and id(e) not in seen:
    seen.add(id(e))
    if isinstance(e, socket.gaierror) or type(e).__name__ == 'NameResolutionError':
      return True
    e = e.__cause__ or e.__context__ or (e.args[0] if e.args and isinstance(
        e.args[0], BaseException) else None) or getattr(e, 'reason', None)
  return False


def _extract_dir(entry, cache_dir):
  parts = pathlib.PurePosixPath(entry.name).parts
  if any(p in ('..', '.', '') for p in parts):
    raise FetchError(f'refused entry name {entry.name!r} as a cache path')
  return cache_root(cache_dir).joinpath('extracted', *parts)


def _fetch_member(entry, cache_dir, manifest, **kwargs):
  """Extracts (and verifies) a checkpoint from its zip; returns the checkpoint prefix path."""
  out_dir = _extract_dir(entry, cache_dir)
  prefix = out_dir / pathlib.PurePosixPath(entry.member).name
  wanted = {}  # local file -> (member, sha256, size)
  for member, meta in sorted((entry.files or {}).items()):
    base = pathlib.PurePosixPath(member).name
    if not member.startswith(entry.member + '.') or base in ('', '.', '..'):
      raise FetchError(f'{entry.name}: refused zip member {member!r} of checkpoint '
                       f'{entry.member!r}')
    wanted[out_dir / base] = (member, meta['sha256'], meta['size'])
  if not any(str(p).endswith('.index') for p in wanted):
    raise FetchError(f'{entry.name}: the manifest lists no {entry.member}.index to extract')
  stale = [p for p, (_, sha, size) in wanted.items() if not _matches(p, sha, size)]
  if not stale:
    return prefix
  archive = manifest_lib.get(entry.archive, manifest)
  zip_path = fetch(archive, cache_dir, manifest=manifest, **kwargs)
  with zipfile.ZipFile(zip_path) as z:
    for path in stale:
      member, sha, size = wanted[path]
      source = f'{zip_path}:{member}'
      try:
        info = z.getinfo(member)
      except KeyError:
        raise FetchError(f'{entry.name}: {archive.name} has no member {member!r}') from None
      with _Sink(path, entry.name, sha, size) as sink, z.open(info) as f:
        for chunk in iter(lambda: f.read(_CHUNK), b''):
          sink.write(chunk, source)
        sink.commit(source)
  return prefix


def fetch(name_or_entry, cache_dir=None, *, manifest=None, retries=1, backoff=1.0,
          timeout=(5.0, 10.0)):
  """Returns the local path of a verified copy of a manifest entry, fetching it if needed.

  Args:
    name_or_entry: a manifest name or an `Entry`.
    cache_dir: cache directory; None for $TF_MULTINCA_CACHE or ~/.cache/tf_multinca.
    manifest: {name: Entry}; None for the default manifest.
    retries: further download attempts after a network failure or a 5xx/429 answer.
    backoff: seconds before the first retry; doubled for each further one.
    timeout: requests' (connect, read) timeout in seconds.

  Returns:
    `pathlib.Path` of the file; for a checkpoint inside a zip, its checkpoint prefix
    (`<prefix>.index` exists).

  Raises:
    UnknownEntryError: an unknown name (listing close matches).
    ChecksumError: the file obtained has the wrong size or sha256 (nothing is left in the cache).
    FetchError: the file is not in the mirror, or could not be downloaded.
  """
  entry = manifest_lib.get(name_or_entry, manifest)
  kwargs = dict(retries=retries, backoff=backoff, timeout=timeout)
  try:
    return _fetch(entry, cache_dir, manifest, kwargs)
  except FetchError:
    raise
  except OSError as e:  # the cache: a file where a directory should be, read-only, full disk
    raise FetchError(f'cannot write {entry.name} into the cache {cache_root(cache_dir)} '
                     f'({e.strerror or e}: {e.filename or ""}); set ${CACHE_ENV} (or --cache_dir) '
                     'to a writable directory') from None


def _fetch(entry, cache_dir, manifest, kwargs):
  if entry.in_archive:
    return _fetch_member(entry, cache_dir, manifest, **kwargs)
  dest = cache_path(entry, cache_dir)
  if dest.exists():
    if _matches(dest, entry.sha256, entry.size):
      return dest
    dest.unlink()  # corrupt or stale: fetch it again
  mirror = os.environ.get(MIRROR_ENV)
  if mirror:
    return _copy_from_mirror(entry, mirror, dest)
  return _download(entry, dest, **kwargs)


def verify(name_or_entry, cache_dir=None, *, manifest=None, **kwargs):
  """Checks that an entry can be obtained byte-exact (fetching it if it is not cached).

  Returns:
    True when the file (or every file of a checkpoint in a zip) has the manifest's size and
    sha256.

  Raises:
    ChecksumError: it does not (the bad copy is not kept).
    FetchError: it cannot be obtained.
  """
  entry = manifest_lib.get(name_or_entry, manifest)
  path = fetch(entry, cache_dir, manifest=manifest, **kwargs)
  if entry.in_archive:
    checks = [(path.parent / pathlib.PurePosixPath(m).name, meta['sha256'], meta['size'])
              for m, meta in entry.files.items()]
  else:
    checks = [(path, entry.sha256, entry.size)]
  for p, sha, size in checks:
    got_sha, got_size = _digest(p)
    if (got_sha, got_size) != (sha, size):
      p.unlink(missing_ok=True)
      raise ChecksumError(entry.name, str(p), sha, got_sha, size, got_size)
  return True
