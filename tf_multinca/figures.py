"""Figures for papers: matplotlib on its headless Agg backend, written as PNG and SVG.

    from tf_multinca.figures import plt
    fig, ax = plt.subplots()
    figures.save(fig, 'results/figures', 'distribution')   # distribution.png, distribution.svg

Files are written atomically (`fileio`) and carry no date, so a figure redrawn from the same
data is the same bytes.
"""

import pathlib

import matplotlib
matplotlib.use('Agg')  # headless: figures go to files, never to a display
from matplotlib import pyplot as plt  # pylint: disable=wrong-import-position

from tf_multinca import fileio

__all__ = ['plt', 'save']

# No dates or tool versions in the files; stable element ids in the SVG.
_METADATA = {'png': {'Software': None}, 'svg': {'Date': None, 'Creator': None}}


def save(fig, directory, stem, dpi=120):
  """Writes `fig` as `<stem>.png` and `<stem>.svg` under `directory`; closes it.

  Returns:
    [png path, svg path].
  """
  paths = []
  with plt.rc_context({'svg.hashsalt': 'tf_multinca'}):
    for fmt in ('png', 'svg'):
      paths.append(fileio.write_file(
          pathlib.Path(directory) / f'{stem}.{fmt}',
          lambda p, fmt=fmt: fig.savefig(p, format=fmt, dpi=dpi, metadata=_METADATA[fmt]),
          suffix=f'.{fmt}'))
  plt.close(fig)
  return paths
