"""Damage: cells erased from a grid, to see whether an organism heals (Distill's experiment 3).

A damage spec, parsed once at the edge (`parse_damage`), is a typed `Damage`:

    'STEP:disc:R'      a disc of radius R cells around a living cell drawn at random
    'STEP:half:ANGLE'  the half-plane beyond the organism's centre in direction ANGLE (degrees,
                       0 = towards +x, 90 = towards +y)

applied after step STEP of a rollout (counted from the seed). Masks are `[B, H, W, 1]` float32
keep-masks: 0 where cells are erased, 1 elsewhere; `damage(x, keep)` zeroes every channel of the
erased cells. Distances wrap around the grid under 'circular' padding (the paper's torus).
Randomness comes from a `tf.random.Generator` (seedable), or `tf.random.uniform` without one.
"""

import dataclasses
import math
import re

import tensorflow as tf

from tf_multinca import errors
from tf_multinca import perception

KINDS = ('disc', 'half')


class DamageError(errors.Error, ValueError):
  """A damage spec that cannot be read or applied."""


@dataclasses.dataclass(frozen=True)
class Damage:
  """One damage of a rollout.

  Attributes:
    step: applied after this step (from the seed).
    kind: 'disc' or 'half'.
    size: the disc's radius in cells, or the half-plane's direction in degrees.
  """
  step: int
  kind: str
  size: float

  def __str__(self):
    return f'{self.step}:{self.kind}:{self.size:g}'


def parse_damage(spec):
  """'300:disc:8' or '300:half:90' (or a `Damage`) -> `Damage`.

  Raises:
    DamageError: naming the spec and the accepted forms.
  """
  if isinstance(spec, Damage):
    return spec
  text = str(spec).strip()
  m = re.fullmatch(r'(\d+):(disc|half):(-?[0-9]+(?:\.[0-9]+)?)', text)
  if m:
    step, kind, size = int(m.group(1)), m.group(2), float(m.group(3))
    if kind == 'half' or size > 0:
      return Damage(step, kind, size)
  raise DamageError(f'bad damage {text!r}; expected STEP:disc:R (R > 0 cells, e.g. 300:disc:8) '
                    'or STEP:half:ANGLE (degrees, e.g. 300:half:90)')


def _offsets(h, w, centres, padding):
  """`[B, H, W]` (dy, dx) of every cell from each sample's centre `[B, 2]` (row, column),
  wrapped to the nearest image under 'circular' padding."""
  ys = tf.range(h, dtype=tf.float32)[None, :, None] - centres[:, 0, None, None]
  xs = tf.range(w, dtype=tf.float32)[None, None, :] - centres[:, 1, None, None]
  if padding == 'circular':
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    ys = ys - hf * tf.round(ys / hf)
    xs = xs - wf * tf.round(xs / wf)
  return ys, xs


def disc_mask(shape, centres, radius, padding='zeros'):
  """Keep-mask `[B, H, W, 1]`: 0 on the cells within `radius` of each centre.

  Args:
    shape: (B, H, W).
    centres: `[B, 2]` (row, column) of each disc.
    radius: in cells; a cell at distance <= radius is erased.
  """
  b, h, w = shape
  ys, xs = _offsets(h, w, tf.cast(tf.reshape(centres, [b, 2]), tf.float32), padding)
  return tf.cast(ys ** 2 + xs ** 2 > radius ** 2, tf.float32)[..., None]


def half_plane_mask(shape, centres, angle, padding='zeros'):
  """Keep-mask `[B, H, W, 1]`: 0 on the cells strictly beyond each centre in direction
  `angle` (degrees; 0 = +x, 90 = +y, i.e. down the rows)."""
  b, h, w = shape
  ys, xs = _offsets(h, w, tf.cast(tf.reshape(centres, [b, 2]), tf.float32), padding)
  a = math.radians(angle)
  # Rounded: cos(90 degrees) is 6e-17, not 0, and would tip the cells on the boundary line.
  cos, sin = round(math.cos(a), 9), round(math.sin(a), 9)
  return tf.cast(xs * cos + ys * sin <= 0.0, tf.float32)[..., None]


def random_living_cells(alive, rng=None):
  """`[B, 2]` float (row, column) of one living cell per sample, uniformly; the grid's centre
  for a sample with none. `alive`: `[B, H, W]` bool."""
  b, h, w = tf.unstack(tf.shape(alive))
  draw = (rng.uniform(tf.shape(alive)) if rng is not None else
          tf.random.uniform(tf.shape(alive)))
  scores = tf.reshape(tf.where(alive, draw + 1.0, 0.0), [b, -1])
  flat = tf.argmax(scores, axis=1, output_type=tf.int32)
  cell = tf.cast(tf.stack([flat // w, flat % w], 1), tf.float32)
  centre = tf.cast(tf.stack([h // 2, w // 2]), tf.float32)[None]
  return tf.where(tf.reduce_any(alive, [1, 2])[:, None], cell, centre)


def centres_of_mass(alive):
  """`[B, 2]` float (row, column) mean position of the living cells (the grid's centre for a
  sample with none). `alive`: `[B, H, W]` bool."""
  m = tf.cast(alive, tf.float32)
  h, w = tf.shape(alive)[1], tf.shape(alive)[2]
  rows = tf.range(h, dtype=tf.float32)[None, :, None]
  cols = tf.range(w, dtype=tf.float32)[None, None, :]
  n = tf.reduce_sum(m, [1, 2])
  safe = tf.maximum(n, 1.0)
  centre = tf.stack([tf.reduce_sum(m * rows, [1, 2]) / safe,
                     tf.reduce_sum(m * cols, [1, 2]) / safe], 1)
  middle = tf.cast(tf.stack([h // 2, w // 2]), tf.float32)[None]
  return tf.where((n > 0)[:, None], centre, middle)


def damage_mask(spec, alpha, padding='zeros', rng=None):
  """The keep-mask of `spec` (a `Damage` or its text) for a grid whose total alpha is
  `alpha` `[B, H, W]`: a disc around a random living cell, or the half-plane beyond the
  organism's centre of mass."""
  spec = parse_damage(spec)
  alive = alpha > perception.ALIVE_THRESHOLD
  shape = tf.unstack(tf.shape(alpha))
  if spec.kind == 'disc':
    return disc_mask(shape, random_living_cells(alive, rng), spec.size, padding)
  return half_plane_mask(shape, centres_of_mass(alive), spec.size, padding)


def damage(x, keep):
  """`x` `[B, H, W, C]` with every channel of the erased cells (keep == 0) set to zero."""
  return x * keep
