"""Local registration of trained models, and one resolver for every kind of model name.

A local manifest is a JSON file `{"entries": [{name, weights, format, convention, role,
organism, target, ...}]}`. A training run registers into `<workdir>/registered.json` and, when
`$TF_MULTINCA_LOCAL_MANIFEST` is set, into that user-level manifest too. `resolve(name)` accepts
a registered name, a published manifest name or a weight path, so the tools take all three.
"""

import datetime
import json
import os
import pathlib
import re

from tf_multinca import fileio as io

LOCAL_MANIFEST_ENV = 'TF_MULTINCA_LOCAL_MANIFEST'
WORKDIR_MANIFEST = 'registered.json'
_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,127}')


class RegistryError(ValueError):
  """A bad name, an unreadable manifest, or a name registered twice."""


def check_name(name):
  """Raises RegistryError unless `name` is a plausible model name (letters, digits, _-./)."""
  if not isinstance(name, str) or not _NAME.fullmatch(name) or '..' in name:
    raise RegistryError(f'bad model name {name!r}: use letters, digits and _ - . / (e.g. '
                        "'local/lizard_persist'), at most 128 characters")
  return name


def default_manifests():
  """The local manifests searched by default: `$TF_MULTINCA_LOCAL_MANIFEST` if set."""
  env = os.environ.get(LOCAL_MANIFEST_ENV)
  return [pathlib.Path(env).expanduser()] if env else []


def read_manifest(path):
  """The entries of a local manifest, {name: entry}; {} for a missing file.

  Raises:
    RegistryError: a file that is not a local manifest.
  """
  path = pathlib.Path(path)
  if not path.exists():
    return {}
  try:
    doc = json.loads(path.read_text(encoding='utf-8'))
    entries = doc['entries']
    return {e['name']: e for e in entries}
  except (ValueError, KeyError, TypeError) as e:
    raise RegistryError(f'{path} is not a local manifest ({{"entries": [...]}}): {e}') from None


def register(name, weights, *, convention, role='', organism='', target='', manifest,
             overwrite=True, **extra):
  """Adds (or replaces) an entry in the local manifest `manifest`, atomically.

  Args:
    name: the model's name.
    weights: path of its weights (`.weights.h5`, a SavedModel dir, or any `pretrained.load`
      format); stored absolute.
    convention: 'paper' or 'distill'.
    role, organism, target: as in the published manifest.
    manifest: the local manifest file to write.
    overwrite: replace an entry of the same name; False raises instead.
    **extra: more JSON fields (e.g. the config).

  Returns:
    The entry dict.
  """
  check_name(name)
  weights = pathlib.Path(weights).resolve()
  if not weights.exists():
    raise RegistryError(f'cannot register {name}: {weights} does not exist')
  entries = read_manifest(manifest)
  if name in entries and not overwrite:
    raise RegistryError(f'{name} is already registered in {manifest}')
  entries[name] = dict(extra, name=name, weights=str(weights), format=_format(weights),
                       convention=convention, role=role, organism=organism, target=target,
                       created=datetime.datetime.now(datetime.timezone.utc).isoformat())
  io.write_json(manifest, {'entries': [entries[k] for k in sorted(entries)]})
  return entries[name]


def _format(path):
  if path.is_dir():
    return 'saved_model'
  if path.name.endswith('.weights.h5'):
    return 'weights_h5'
  return path.suffix.lstrip('.') or 'unknown'


def lookup(name, manifests=None):
  """The local entry called `name` in `manifests` (default `default_manifests()`), or None."""
  for m in (default_manifests() if manifests is None else manifests):
    entry = read_manifest(m).get(name)
    if entry is not None:
      return entry
  return None


def resolve(name, convention=None, manifests=None):
  """A CAModel from a registered name, a published manifest name or a weight path.

  Order: local manifests (`manifests`, default `$TF_MULTINCA_LOCAL_MANIFEST`), then a
  `.weights.h5` / SavedModel / training workdir path, then `pretrained.load` (published names
  and the formats it reads).

  Args:
    convention: load in this convention; None for the entry's (or the format's default).

  Raises:
    ValueError: nothing of that name (`PretrainedError`) or an unreadable file.
  """
  from tf_multinca.training import export  # pylint: disable=g-import-not-at-top
  entry = lookup(name, manifests)
  if entry is not None:
    return export.read_any(entry['weights'], convention or entry.get('convention'))
  path = pathlib.Path(os.fspath(name)).expanduser()
  if path.is_dir() and (path / 'export').is_dir():  # a training workdir
    path = path / 'export' / 'saved_model'
  if path.exists() and (path.name.endswith('.weights.h5') or (path / 'saved_model.pb').exists()):
    return export.read_any(path, convention)
  from tf_multinca import pretrained  # pylint: disable=g-import-not-at-top
  return pretrained.load(os.fspath(name), convention)


def describe(name, manifests=None):
  """{'convention', 'role', 'target', 'organism'} of a registered or published name, or {}."""
  entry = lookup(name, manifests)
  if entry is not None:
    return {k: entry.get(k) for k in ('convention', 'role', 'target', 'organism')}
  from tf_multinca import pretrained  # pylint: disable=g-import-not-at-top
  try:
    e = pretrained.get(name)
  except (KeyError, ValueError, TypeError):
    return {}
  return {'convention': e.convention, 'role': e.role, 'target': e.target,
          'organism': e.organism}
