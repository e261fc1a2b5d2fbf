"""Local registration of trained models: names for our own weight files.

A local manifest is a JSON file `{"entries": [{name, weights, format, convention, role,
organism, target, ...}]}`. A training run registers into `<workdir>/registered.json` and into
the user's registry, `$XDG_CONFIG_HOME/tf_multinca/registry.json` (`~/.config/...` by default;
`$TF_MULTINCA_LOCAL_MANIFEST` names another file), where every binary looks with no variable set.
`hub.load(name)` resolves registered names with every other kind of model name. A registered name
can never shadow a published one, nor a `results/` name.
"""

import datetime
import json
import os
import pathlib
import re

from tf_multinca import errors
from tf_multinca import fileio as io
from tf_multinca.pretrained import manifest as manifest_lib

LOCAL_MANIFEST_ENV = 'TF_MULTINCA_LOCAL_MANIFEST'  # overrides the user's registry file
USER_MANIFEST = pathlib.Path('tf_multinca', 'registry.json')  # under $XDG_CONFIG_HOME
WORKDIR_MANIFEST = 'registered.json'
# The results zoo's prefix; the published manifest's first path parts are reserved too.
RESULTS_PREFIX = 'results'
_NAME = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.\-/]{0,127}')


class RegistryError(errors.Error, ValueError):
  """A bad name, an unreadable manifest, or a name registered twice."""


def check_name(name):
  """Raises RegistryError unless `name` can be registered: letters, digits and _-./, and
  neither a published manifest name nor a `results/` name (which it would shadow)."""
  if not isinstance(name, str) or not _NAME.fullmatch(name) or '..' in name:
    raise RegistryError(f'bad model name {name!r}: use letters, digits and _ - . / (e.g. '
                        "'local/lizard_persist'), at most 128 characters")
  published = manifest_lib.load_manifest()
  reserved = {n.split('/')[0] for n in published} | {RESULTS_PREFIX}
  if name.split('/')[0] in reserved or name in published:
    raise RegistryError(f'cannot register {name!r}: it is a published (or results/) name and '
                        "would shadow it; pick a name under local/ (e.g. 'local/my_lizard')")
  return name


def user_manifest():
  """The user's registry: `$TF_MULTINCA_LOCAL_MANIFEST` if set, else
  `$XDG_CONFIG_HOME/tf_multinca/registry.json` (`~/.config/tf_multinca/registry.json`)."""
  env = os.environ.get(LOCAL_MANIFEST_ENV)
  if env:
    return pathlib.Path(env).expanduser()
  return pathlib.Path(os.environ.get('XDG_CONFIG_HOME') or '~/.config').expanduser() / USER_MANIFEST


def default_manifests():
  """The local manifests searched by default: the user's registry (`user_manifest`)."""
  return [user_manifest()]


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
