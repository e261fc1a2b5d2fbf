"""The published pretrained models and targets (SPEC section 4).

    from tf_multinca import pretrained
    ca = pretrained.load('paper/lizard/persist')           # a manifest name
    ca = pretrained.load('/tmp/my_model.pt')               # or a weight file
    pair = pretrained.load_pairing('paper/lizard/virus/lizard_persist_to_red_squareside_2')

`tf_multinca/pretrained/manifest.json` (package data) lists every published file (`entries()`,
`get(name)`); `fetch` brings one into the local cache, sha256-verified (from
`$TF_MULTINCA_MIRROR` when set, else by download); the readers of `formats` turn weight files
into the canonical weight dict.
"""

import dataclasses
import os
import pathlib

from tf_multinca import errors
from tf_multinca import conventions as conv_lib
from tf_multinca import model as model_lib
from tf_multinca.pretrained import manifest as manifest_lib
from tf_multinca.pretrained.fetch import ChecksumError, FetchError, cache_path, fetch, verify
from tf_multinca.pretrained.formats import (UnsafePickleError, WeightFormatError,
                                            distill_models_zip_prefix, list_zip_checkpoints,
                                            read_checkpoint_from_zip, read_pt,
                                            read_tf_checkpoint, read_webgl_json, read_weights,
                                            write_webgl_json)
from tf_multinca.pretrained.manifest import (Entry, ManifestError, UnknownEntryError, entries,
                                             get, load_manifest)

__all__ = [
    'ChecksumError', 'Entry', 'FetchError', 'ManifestError', 'Pairing', 'PretrainedError',
    'UnknownEntryError', 'UnsafePickleError', 'WeightFormatError', 'cache_path',
    'distill_models_zip_prefix', 'entries', 'fetch', 'get', 'list_zip_checkpoints', 'load',
    'load_manifest', 'load_pairing', 'read_checkpoint_from_zip', 'read_pt', 'read_tf_checkpoint',
    'read_webgl_json', 'read_weights', 'verify', 'write_webgl_json',
]


class PretrainedError(errors.Error, ValueError):
  """A name that is neither a manifest model nor a weight file, or an entry of the wrong kind."""


def default_convention(fmt):
  """'paper' for the paper's `.pt` files, 'distill' for TF checkpoints and WebGL JSON."""
  return 'paper' if fmt == 'pt' else 'distill'


def _model(weights, convention, source, **model_kwargs):
  ca = model_lib.CAModel(convention=convention, **model_kwargs)
  return ca.set_rule_weights(weights, source=source)


def load(name_or_path, convention=None, *, cache_dir=None, manifest=None, **model_kwargs):
  """A `CAModel` with published (or local) weights.

  Args:
    name_or_path: a manifest model name ('paper/lizard/persist', 'distill/ex2_lizard',
      'reprogramming/red_model', ...), an `Entry`, or a weight file path (a `.pt`, a WebGL
      `.json`, a checkpoint prefix or directory, a zip holding one checkpoint).
    convention: 'paper' | 'distill' | a `Convention`; None for the manifest's (for a manifest
      model) or the format's default (`default_convention`: 'paper' for `.pt`, else 'distill').
    cache_dir: cache directory for `fetch`.
    manifest: {name: Entry}; None for the default manifest.
    **model_kwargs: more `CAModel` arguments (e.g. fire_rate).

  Returns:
    `CAModel` whose rule holds the weights.

  Raises:
    PretrainedError: not a manifest name nor an existing path, or a manifest entry that is not a
      model (the message lists close names).
    ChecksumError, FetchError: the file could not be obtained byte-exact.
    ValueError: a file the readers refuse (`WeightFormatError`, `UnsafePickleError`,
      `WeightMismatchError`).
  """
  if isinstance(name_or_path, manifest_lib.Entry):
    entry = name_or_path
  else:
    entry = _manifest_entry(name_or_path, manifest)
  if entry is None:
    path = pathlib.Path(name_or_path).expanduser()
    weights, fmt = read_weights(path)
    convention = convention if convention is not None else default_convention(fmt)
    return _model(weights, convention, str(path), **model_kwargs)
  if not entry.is_model:
    models = [e.name for e in entries('model', manifest)]
    raise PretrainedError(f'{entry.name} is a {entry.format} entry, not a model; models: '
                          f'{_some(models)}')
  path = fetch(entry, cache_dir, manifest=manifest)
  weights, _ = read_weights(path, fmt=entry.format)
  convention = convention if convention is not None else entry.convention
  return _model(weights, convention, f'{entry.name} ({path})', **model_kwargs)


def _manifest_entry(name, manifest):
  """The entry called `name`; None for an existing path.

  Raises:
    PretrainedError: neither (naming close manifest names).
  """
  try:
    return get(os.fspath(name), manifest)
  except (UnknownEntryError, TypeError) as e:
    if os.path.exists(name) or os.path.exists(f'{name}.index'):
      return None
    close = getattr(e, 'close', None)
    hint = (f'did you mean {", ".join(close)}?' if close else
            '`python -m tools.pretrained list` shows the manifest names.')
    raise PretrainedError(f'{name!r} is neither a pretrained manifest name nor an existing '
                          f'weight file; {hint}') from None


def _some(names, n=8):
  return ', '.join(names[:n]) + (f', ... ({len(names)} in all)' if len(names) > n else '')


@dataclasses.dataclass
class Pairing:
  """An adversary and the organism it was trained to take over.

  Attributes:
    original: `CAModel` of the organism (rule 0).
    adversary: `CAModel` of the adversary (rule 1).
    injection: how the adversary was injected ({'kind': 'square', 'side': s},
      {'kind': 'spray', 'rate': p}), or None when unrecorded (see the entry's notes).
    target: manifest name of the adversary's target image; None where it was never published.
    original_name: manifest name of the original.
    adversary_name: manifest name of the adversary.
    notes: the adversary entry's notes (provenance, caveats), or None.
  """
  original: model_lib.CAModel
  adversary: model_lib.CAModel
  injection: dict | None
  target: str | None
  original_name: str
  adversary_name: str
  notes: str | None = None


def load_pairing(name, *, cache_dir=None, manifest=None, **model_kwargs):
  """Loads an adversary (or perturbation) entry together with its original organism.

  Both models use the adversary entry's convention (the convention the pair was trained in).

  Raises:
    PretrainedError: `name` is not an adversary/perturbation with a recorded original.
  """
  entry = get(name, manifest)
  if entry.original is None:
    pairs = [e.name for e in entries(manifest=manifest) if e.original is not None]
    raise PretrainedError(f'{entry.name} is a {entry.role or entry.format} entry without an '
                          f'original; pairings: {_some(pairs)}')
  original = get(entry.original, manifest)
  convention = conv_lib.get_convention(entry.convention)
  kwargs = dict(cache_dir=cache_dir, manifest=manifest, **model_kwargs)
  return Pairing(
      original=load(original, convention, **kwargs),
      adversary=load(entry, convention, **kwargs),
      injection=dict(entry.injection) if entry.injection else None,
      target=entry.target,
      original_name=original.name,
      adversary_name=entry.name,
      notes=entry.notes)
