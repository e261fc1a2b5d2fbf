"""Named training configs: the paper's adversary experiments and Distill's NCA experiments.

`get_config(name)` returns a validated `TrainConfig`; every name has a `<name>_testing` variant
(tiny, for tests). `names()` lists them all.
"""

import pathlib

from tf_multinca.configs import adversary
from tf_multinca.configs import base
from tf_multinca.configs import nca
from tf_multinca.configs.base import ConfigError, TrainConfig, apply_overrides, validate

DEFAULT_ADVERSARY = 'lizard_red'  # the README's main job
DEFAULT_NCA = 'nca_persistent'
# Neutral base configs: a run of one is named after its workdir (`named_after_workdir`).
NEUTRAL = ('custom', 'custom_testing')

_FULL = {}
_FULL.update({k: (f, adversary.testing) for k, f in adversary.CONFIGS.items()})
_FULL.update({k: (f, nca.testing) for k, f in nca.CONFIGS.items()})

__all__ = ['ConfigError', 'DEFAULT_ADVERSARY', 'DEFAULT_NCA', 'NEUTRAL', 'TrainConfig',
           'apply_overrides', 'base', 'get_config', 'named_after_workdir', 'names', 'validate']


def names(kind=None):
  """All config names (with the `_testing` variants), optionally of one kind."""
  out = []
  for name in sorted(_FULL):
    if kind is None or _FULL[name][0]().kind == kind:
      out += [name, name + '_testing']
  return out


def named_after_workdir(config, workdir):
  """`config`, named after `workdir` if it is a neutral base (`NEUTRAL`): a researcher's own run
  is not described in its outputs (config.json, TensorBoard, weights) as a named experiment."""
  if config.name not in NEUTRAL:
    return config
  return config.replace(name=pathlib.Path(workdir).expanduser().resolve().name or 'run')


def get_config(name, overrides=()):
  """The named config with `key=value` overrides applied, validated.

  Raises:
    ConfigError: an unknown name (listing the known ones) or a bad override.
  """
  base_name = name[:-len('_testing')] if name.endswith('_testing') else name
  if base_name not in _FULL:
    raise ConfigError(f'unknown config {name!r}; known: {", ".join(names())}')
  make, tiny = _FULL[base_name]
  config = make()
  if name.endswith('_testing'):
    config = tiny(config)
  config = config.replace(name=name)
  return apply_overrides(config, overrides)
