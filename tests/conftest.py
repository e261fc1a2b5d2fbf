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
