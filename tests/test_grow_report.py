"""tools.grow's library: grown models as a PNG, a GIF whose frames are labelled, and the MSE."""

import numpy as np
from PIL import Image, ImageSequence

from tf_multinca import grow_report


def test_grow_writes_labelled_frames_and_the_mse(tmp_path, mirror, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  [line] = list(grow_report.grow_models(['paper/lizard/persist'], tmp_path, steps=12, batch=2))
  assert 'paper/lizard/persist (paper, 12 steps)' in line and 'MSE vs' in line
  png = np.asarray(Image.open(tmp_path / 'paper_lizard_persist.png'))
  assert png.shape[:2] == (48 * 4, 2 * 48 * 4 + 2)  # two seeds, zoom 4, a 2-pixel gap
  frames = [np.asarray(f.convert('RGB')) for f in
            ImageSequence.Iterator(Image.open(tmp_path / 'paper_lizard_persist.gif'))]
  assert len(frames) == 7  # steps 0, 2, ..., 12
  for frame in frames:
    band = frame[:16]  # the 't = N' label above the organisms
    assert (band.min(axis=2) < 100).any() and (band.max(axis=2) > 200).all(axis=1).any()
  # Different labels: the step is written on each frame.
  assert not np.array_equal(frames[0][:16], frames[-1][:16])
  mse = (tmp_path / 'paper_lizard_persist_mse.txt').read_text()
  assert mse.startswith('MSE of RGBA vs ') and 'over 2 seeds' in mse
