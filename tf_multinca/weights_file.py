"""Our own weight files: one rule as Keras `.weights.h5`, with its convention in a JSON beside it.

A rule's numbers mean nothing without the convention it was trained in (zero or circular
padding, the seed, the colours), and an HDF5 file of Keras weights does not say it. So every
`<name>.weights.h5` we write has a `<name>.weights.json` beside it::

    {"format": "tf_multinca.weights_h5", "version": 1, "convention": "paper", ...}

Reading a `.weights.h5` without that file needs an explicit convention: it is never guessed.
Both files hold data only (HDF5 datasets, JSON); nothing in them runs.
"""

import json
import os
import pathlib

from tf_multinca import errors
from tf_multinca import fileio
from tf_multinca import model as model_lib

SUFFIX = '.weights.h5'
FORMAT = 'tf_multinca.weights_h5'
VERSION = 1


class WeightsFileError(errors.Error, ValueError):
  """A `.weights.h5` that cannot be read as asked (no convention, a bad sidecar, bad data)."""


def sidecar_path(path):
  """`x/adversary.weights.h5` -> `x/adversary.weights.json`."""
  path = pathlib.Path(path)
  if not path.name.endswith(SUFFIX):
    raise WeightsFileError(f'{path}: a Keras weights file must end in {SUFFIX}')
  return path.with_name(path.name[:-len(SUFFIX)] + '.weights.json')


def save(ca, path, **info):
  """Writes `ca`'s rule as `path` (`.weights.h5`) and its convention beside it, atomically.

  Args:
    ca: a `CAModel`.
    path: the file, ending in `.weights.h5`.
    **info: more JSON fields for the sidecar (e.g. the config's name, the step).

  Returns:
    The `.weights.h5` path.
  """
  path = pathlib.Path(path)
  meta = sidecar_path(path)
  fileio.write_file(path, ca.save_weights, suffix=SUFFIX)
  fileio.write_json(meta, dict(info, format=FORMAT, version=VERSION,
                               convention=ca.convention.name, channel_n=ca.channel_n,
                               hidden_n=ca.hidden_n, fire_rate=ca.fire_rate))
  return path


def read_info(path):
  """The sidecar of `path` as a dict, or None when there is none.

  Raises:
    WeightsFileError: a sidecar that is not ours.
  """
  meta = sidecar_path(path)
  if not meta.is_file():
    return None
  try:
    if meta.stat().st_size > 1 << 20:
      raise ValueError('larger than 1 MiB')
    doc = json.loads(meta.read_text(encoding='utf-8'))
    if not isinstance(doc, dict) or doc.get('format') != FORMAT:
      raise ValueError(f'format is not {FORMAT!r}')
  except (OSError, ValueError) as e:
    raise WeightsFileError(f'{meta} is not a tf_multinca weights sidecar ({e}); delete it and '
                           'pass the convention explicitly') from None
  return doc


def load(path, convention=None, **model_kwargs):
  """A `CAModel` from a `.weights.h5` written by `save`.

  Args:
    path: the `.weights.h5` file.
    convention: 'paper' | 'distill'; None for the sidecar's.
    **model_kwargs: more `CAModel` arguments.

  Raises:
    WeightsFileError: no sidecar and no convention, or a file Keras cannot read into the rule.
  """
  path = pathlib.Path(os.fspath(path))
  info = read_info(path)
  if convention is None:
    if info is None:
      raise WeightsFileError(
          f'{path} has no {sidecar_path(path).name} beside it saying its convention; pass '
          "one explicitly (convention='paper' or 'distill', --convention=...)")
    convention = info['convention']
  ca = model_lib.CAModel(convention=convention, **model_kwargs)
  try:
    ca.load_weights(os.fspath(path))
  except (OSError, ValueError, KeyError) as e:
    raise WeightsFileError(f'{path} is not a CAModel .weights.h5 ({e})') from None
  return ca


def read(path):
  """The canonical weight dict (`model.WEIGHT_NAMES`) of a `.weights.h5` (the numbers do not
  depend on the convention, so none is needed)."""
  return load(path, convention='paper').get_rule_weights()
