"""Shared pytest fixtures."""

import os
import pathlib

import pytest

_REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope='session')
def mirror():
  """The mirror of published files: $TF_MULTINCA_MIRROR or <repo>/../shared/mirror."""
  path = pathlib.Path(os.environ.get('TF_MULTINCA_MIRROR', _REPO.parent / 'shared' / 'mirror'))
  path = path.resolve()
  if not path.is_dir():
    pytest.fail(f'mirror of published files not found at {path}; set TF_MULTINCA_MIRROR to the '
                'directory laid out by URL (raw.githubusercontent.com/<owner>/<repo>/...)')
  return path


@pytest.fixture(scope='session', autouse=True)
def published_files_env(tmp_path_factory):
  """Hermetic published files: the mirror when no other is set, and a fresh cache per session.

  Subprocesses (the tools) inherit both through the environment.
  """
  saved = {k: os.environ.get(k) for k in ('TF_MULTINCA_MIRROR', 'TF_MULTINCA_CACHE',
                                          'XDG_CONFIG_HOME')}
  default = _REPO.parent / 'shared' / 'mirror'
  if saved['TF_MULTINCA_MIRROR']:
    # Absolute, so that subprocesses and notebook kernels started elsewhere find it too.
    os.environ['TF_MULTINCA_MIRROR'] = str(pathlib.Path(saved['TF_MULTINCA_MIRROR']).resolve())
  elif default.is_dir():
    os.environ['TF_MULTINCA_MIRROR'] = str(default.resolve())
  os.environ['TF_MULTINCA_CACHE'] = str(tmp_path_factory.mktemp('tf_multinca_cache'))
  # The user's registry (registry.user_manifest) too: no test writes into the real home.
  os.environ['XDG_CONFIG_HOME'] = str(tmp_path_factory.mktemp('config'))
  yield
  for k, v in saved.items():
    if v is None:
      os.environ.pop(k, None)
    else:
      os.environ[k] = v
