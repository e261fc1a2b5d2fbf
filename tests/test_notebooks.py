"""Every notebook in colab/ executes top to bottom (small settings) and is committed without outputs."""

import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient

REPO = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / 'colab').glob('*.ipynb'))


def test_there_are_notebooks():
  assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_are_stripped(path):
  nb = nbformat.read(path, as_version=4)
  for cell in nb.cells:
    if cell.cell_type == 'code':
      assert not cell.outputs and cell.execution_count is None, f'{path.name}: strip outputs'


@pytest.mark.slow
@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, tmp_path, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_NOTEBOOK_SMALL', '1')
  monkeypatch.setenv('TF_CPP_MIN_LOG_LEVEL', '3')
  monkeypatch.setenv('PYTHONPATH', str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))
  nb = nbformat.read(path, as_version=4)
  client = NotebookClient(nb, timeout=600, kernel_name='python3',
                          resources={'metadata': {'path': str(tmp_path)}})
  client.execute()  # raises CellExecutionError, naming the cell, on any error
  images = [o for c in nb.cells if c.cell_type == 'code' for o in c.outputs
            if 'image/png' in o.get('data', {})]
  assert images, f'{path.name} produced no figure'
