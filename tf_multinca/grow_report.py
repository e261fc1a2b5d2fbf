"""Grows named models into pictures: the library behind `python -m tools.grow`."""

import pathlib

from tf_multinca import hub
from tf_multinca import metrics
from tf_multinca import render
from tf_multinca import rollout
from tf_multinca import targets


def grow_models(models, workdir, steps=200, batch=4, seed=0, zoom=4):
  """Grows each model, writes `<name>.png`, `<name>.gif` and, with a target, its MSE.

  Args:
    models: manifest names or weight paths.

  Yields:
    One line of text per model.
  """
  workdir = pathlib.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  for name in models:
    ca = hub.load(name)
    conv = ca.convention
    x, kept = rollout.grow(ca, steps, batch=batch, seed=seed, keep_every=2)
    stem = name.replace('/', '_').replace('%', 'pct')
    png = render.save_png(render.tile(render.zoom(render.state_to_rgb(x, conv), zoom), pad=2),
                          workdir / f'{stem}.png')
    frames = [render.title(render.tile(render.zoom(render.state_to_rgb(s, conv), zoom), pad=2),
                           f't = {t}') for t, s in kept]
    gif = render.save_gif(frames, workdir / f'{stem}.gif')
    line = f'{name} ({conv.name}, {steps} steps): {png}, {gif}'
    target = _target_of(name)
    if target is not None:
      t = targets.build_target(target, conv)
      mse = metrics.single_target_loss(x, t).numpy()
      (workdir / f'{stem}_mse.txt').write_text(
          f'MSE of RGBA vs {target}: {mse.mean():.6f} ± {mse.std():.6f} over {batch} seeds\n')
      line += f', MSE vs {target} {mse.mean():.2e}'
    yield line


def _target_of(name):
  return hub.describe(name).get('target') or None
