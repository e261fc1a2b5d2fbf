"""The manifest of published models and targets (`tf_multinca/pretrained/manifest.json`).

Every published file the project uses has one entry: where it is (`url`, pinned to a commit), what
it is (`sha256`, `size`, `format`) and, for models, how to use it (`convention`, `organism`,
`role`, `target`, and for adversaries `original` + `injection`). Checkpoints inside a zip have
`archive` (the zip's entry) and `member` (the checkpoint prefix in it) instead of a URL, and
`files` (the sha256 and size of each checkpoint file). `tools/make_manifest.py` regenerates it.
"""

import dataclasses
import difflib
import json
import os
import pathlib

from tf_multinca import errors

MANIFEST_ENV = 'TF_MULTINCA_MANIFEST'
MODEL_FORMATS = ('pt', 'webgl_json', 'tf_checkpoint')
FORMATS = MODEL_FORMATS + ('zip', 'png', 'license')
KINDS = ('model', 'image', 'archive', 'license')
_KIND_OF_FORMAT = {'pt': 'model', 'webgl_json': 'model', 'tf_checkpoint': 'model', 'png': 'image',
                   'zip': 'archive', 'license': 'license'}


class ManifestError(errors.Error, ValueError):
  """A manifest that cannot be found or read."""


class UnknownEntryError(errors.Error, KeyError):
  """A name that is not in the manifest; the message lists close matches."""

  def __init__(self, name, known):
    self.name = name
    self.close = difflib.get_close_matches(str(name), known, n=5, cutoff=0.5)
    hint = (f'; did you mean {", ".join(self.close)}?' if self.close else
            '; `python -m tools.pretrained list` shows every name')
    super().__init__(f'{name!r} is not in the pretrained manifest{hint}')

  def __str__(self):  # KeyError would repr() the message
    return self.args[0]


@dataclasses.dataclass(frozen=True)
class Entry:
  """One published file, or one checkpoint inside a published zip.

  Attributes:
    name: manifest name, e.g. 'paper/lizard/persist', 'distill/ex2_lizard', 'noto/1f98e'.
    format: 'pt' | 'webgl_json' | 'tf_checkpoint' | 'zip' | 'png' | 'license'.
    url: https URL pinned to a commit (percent-encoded); None for a checkpoint inside a zip.
    sha256: hex digest of the file; None for a checkpoint inside a zip (see `files`).
    size: bytes; None for a checkpoint inside a zip.
    license: name of the LICENSE entry of the file's repository (None for a LICENSE itself).
    convention: models: 'paper' or 'distill'.
    organism: models and emoji: e.g. 'lizard'.
    role: models: 'growing' | 'persistent' | 'regenerating' | 'vanishing' | 'adversary' |
      'perturbation'.
    target: models: manifest name of the target image; None where it was never published.
    original: adversaries and perturbations: manifest name of the organism they were trained on.
    injection: how the adversary was injected: {'kind': 'square', 'side': s} or
      {'kind': 'spray', 'rate': p}; None when the file name does not say.
    archive: checkpoints in a zip: manifest name of the zip.
    member: checkpoints in a zip: the checkpoint prefix inside the zip.
    files: checkpoints in a zip: {member file: {'sha256', 'size'}} of the index and data shards.
    emoji: emoji entries: the emoji character(s).
    spdx: LICENSE entries: the SPDX id.
    notes: provenance not in the file name.
  """
  name: str
  format: str
  url: str | None = None
  sha256: str | None = None
  size: int | None = None
  license: str | None = None
  convention: str | None = None
  organism: str | None = None
  role: str | None = None
  target: str | None = None
  original: str | None = None
  injection: dict | None = None
  archive: str | None = None
  member: str | None = None
  files: dict | None = None
  emoji: str | None = None
  spdx: str | None = None
  notes: str | None = None

  @property
  def kind(self):
    """'model' | 'image' | 'archive' | 'license'."""
    return _KIND_OF_FORMAT[self.format]

  @property
  def is_model(self):
    return self.kind == 'model'

  @property
  def in_archive(self):
    """True for a checkpoint that lives inside a zip entry."""
    return self.archive is not None

  @classmethod
  def from_dict(cls, d):
    """An `Entry` from its manifest dict; unknown keys are an error (they would be lost)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - fields)
    if unknown:
      raise ManifestError(f'manifest entry {d.get("name")!r} has unknown fields {unknown}')
    e = cls(**d)
    if e.format not in FORMATS:
      raise ManifestError(f'manifest entry {e.name!r}: format {e.format!r} not in {FORMATS}')
    if e.in_archive != (e.member is not None) or (not e.in_archive and not (e.url and e.sha256)):
      raise ManifestError(f'manifest entry {e.name!r} needs url + sha256, or archive + member')
    return e


def manifest_candidates():
  """Where the manifest may be, in order: $TF_MULTINCA_MANIFEST, then the package's own
  `tf_multinca/pretrained/manifest.json` (package data: a checkout and a wheel alike)."""
  out = []
  if os.environ.get(MANIFEST_ENV):
    out.append(pathlib.Path(os.environ[MANIFEST_ENV]))
  out.append(pathlib.Path(__file__).resolve().parent / 'manifest.json')
  return out


def manifest_path():
  """The manifest file in use.

  Raises:
    ManifestError: naming every place looked at, when there is none.
  """
  candidates = manifest_candidates()
  if os.environ.get(MANIFEST_ENV):
    # An explicit choice must not silently fall back to another file.
    candidates = candidates[:1]
  for path in candidates:
    if path.is_file():
      return path
  raise ManifestError('no pretrained manifest found; looked at ' +
                      ', '.join(str(p) for p in candidates) +
                      f'. Set ${MANIFEST_ENV} or regenerate it with tools/make_manifest.py.')


def load_manifest(path=None):
  """Reads the manifest.

  Args:
    path: a manifest file; None for `manifest_path()`.

  Returns:
    {name: Entry}, in the file's (sorted) order.
  """
  path = pathlib.Path(path) if path is not None else manifest_path()
  try:
    data = json.loads(path.read_text(encoding='utf-8'))
  except (OSError, ValueError) as e:
    raise ManifestError(f'cannot read the pretrained manifest {path}: {e}') from e
  entries = {}
  for d in data.get('entries', []):
    e = Entry.from_dict(d)
    if e.name in entries:
      raise ManifestError(f'{path}: duplicate entry {e.name!r}')
    entries[e.name] = e
  return entries


def get(name, manifest=None):
  """The entry called `name`.

  Args:
    name: manifest name.
    manifest: {name: Entry} from `load_manifest`; None to read the default one.

  Raises:
    UnknownEntryError: listing close matches.
  """
  if isinstance(name, Entry):
    return name
  manifest = load_manifest() if manifest is None else manifest
  try:
    return manifest[name]
  except (KeyError, TypeError):
    raise UnknownEntryError(name, list(manifest)) from None


def entries(kind=None, manifest=None):
  """Entries sorted by name, optionally filtered.

  Args:
    kind: None for all; a kind ('model', 'image', 'archive', 'license'), a format ('pt',
      'webgl_json', 'tf_checkpoint', 'zip', 'png', 'license'), a role ('persistent',
      'adversary', ...) or a convention ('paper', 'distill').
    manifest: {name: Entry}; None to read the default one.

  Returns:
    list of `Entry`.

  Raises:
    ValueError: for a `kind` that matches nothing any entry can have.
  """
  manifest = load_manifest() if manifest is None else manifest
  values = list(manifest.values())
  if kind is None:
    return values
  known = set(KINDS) | set(FORMATS)
  known |= {e.role for e in values if e.role} | {e.convention for e in values if e.convention}
  if kind not in known:
    raise ValueError(f'unknown entry kind {kind!r}; expected one of {sorted(known)}')
  return [e for e in values if kind in (e.kind, e.format, e.role, e.convention)]
