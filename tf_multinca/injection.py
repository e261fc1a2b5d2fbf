"""Injection of adversary cells into a grown organism (SPEC section 3), vectorised over the batch.

Every mask is `[B, H, W, 1]` float32 in {0, 1}. Randomness comes from a `tf.random.Generator`
(seedable, checkpointable) or, when none is given, from `tf.random.uniform`.
"""

import re

import tensorflow as tf

from tf_multinca import errors
from tf_multinca import layout
from tf_multinca import model as model_lib
from tf_multinca import perception

MATURE = perception.ALIVE_THRESHOLD


# The accepted forms and ranges, for every message that refuses an injection. A rate of 0 (or a
# square of side 0) injects nothing: a takeover without an adversary is a control (--control).
RANGES = ('square:S (S >= 1), spray:P (0 < P <= 1, or P% with 0 < P <= 100) or '
          'checkerboard[:N] (N >= 1)')


class InjectionError(errors.Error, ValueError):
  """An injection that cannot be made (bad spec, or it does not fit the organism)."""


def mature_mask(x, rule=0):
  """`[B, H, W, 1]` bool: cells mature in `rule` (`A_rule > 0.1`) of a multi state."""
  a = layout.multi_alpha(rule)
  return x[..., a:a + 1] > MATURE


def erode(mask, radius, padding='zeros'):
  """Binary erosion of a `[B, H, W, 1]` bool mask by a (2r+1)^2 square.

  Cells outside the grid count as unset under 'zeros' and wrap under 'circular'.
  """
  if radius <= 0:
    return mask
  m = tf.cast(mask, tf.float32)
  size = 2 * radius + 1
  if padding == 'circular':
    m = perception.pad_circular(m, radius)
    eroded = -tf.nn.max_pool2d(-m, size, 1, 'VALID')
  else:
    m = tf.pad(m, [[0, 0], [radius, radius], [radius, radius], [0, 0]])
    eroded = -tf.nn.max_pool2d(-m, size, 1, 'VALID')
  return eroded > 0.5


def square_centres_available(x, side, padding='zeros', rule=0):
  """`[B]` bool: whether each sample has a cell where a square of `side` fits inside."""
  eroded = erode(mature_mask(x, rule), side // 2, padding)
  return tf.reduce_any(eroded, axis=[1, 2, 3])


def square_mask(x, side, padding='zeros', rng=None, rule=0):
  """A `side` x `side` square wholly inside the organism, one per sample.

  The centre c is drawn uniformly among cells of the (side//2)-eroded mature mask; the square
  covers rows and columns `[c - side//2, c - side//2 + side)`. A sample with no such cell gets
  an empty mask; check `square_centres_available` first to refuse it.

  Args:
    x: `[B, H, W, 15 + k]` multi state.
    side: square side s >= 1.

  Returns:
    `[B, H, W, 1]` float32.
  """
  if side < 1:
    raise InjectionError(f'square side must be >= 1, got {side}')
  shape = tf.shape(x)
  b, h, w = shape[0], shape[1], shape[2]
  eroded = tf.cast(erode(mature_mask(x, rule), side // 2, padding), tf.float32)
  noise = model_lib.uniform_noise(tf.shape(eroded), rng)
  # Uniform choice among set cells: the argmax of noise restricted to them.
  score = tf.reshape(eroded * (noise + 1.0), [b, -1])
  idx = tf.argmax(score, axis=-1, output_type=tf.int32)
  has = tf.reduce_max(score, axis=-1) > 0.0
  cy, cx = idx // w, idx % w
  r = side // 2
  rows = tf.range(h)[None, :] - (cy - r)[:, None]
  cols = tf.range(w)[None, :] - (cx - r)[:, None]
  in_rows = tf.math.floormod(rows, h) < side
  in_cols = tf.math.floormod(cols, w) < side
  sq = tf.logical_and(in_rows[:, :, None], in_cols[:, None, :])
  sq = tf.logical_and(sq, has[:, None, None])
  return tf.cast(sq, tf.float32)[..., None]


def spray_mask(x, rate, rng=None):
  """Every cell independently with probability `rate`: `[B, H, W, 1]`."""
  if not 0.0 <= rate <= 1.0:
    raise InjectionError(f'spray rate must be in [0, 1], got {rate}')
  return tf.cast(model_lib.uniform_noise(tf.shape(x[..., :1]), rng) < rate, tf.float32)


def checkerboard_mask(x, period=1):
  """A checkerboard of `period`-cell squares: `[B, H, W, 1]`."""
  shape = tf.shape(x)
  rows = tf.range(shape[1]) // period
  cols = tf.range(shape[2]) // period
  board = tf.math.floormod(rows[:, None] + cols[None, :], 2) == 1
  board = tf.cast(board, tf.float32)[None, :, :, None]
  return tf.tile(board, [shape[0], 1, 1, 1])


def inject(x, mask, source=0, dest=1):
  """Moves the alpha of `source` to `dest` where `mask` is set: `A_d = A_s M`, `A_s = A_s (1-M)`.

  Args:
    x: `[B, H, W, 15 + k]`.
    mask: `[B, H, W, 1]` (or broadcastable) in [0, 1].
  """
  mask = tf.cast(mask, x.dtype)
  channels = x.shape[-1]
  s, d = layout.multi_alpha(source), layout.multi_alpha(dest)
  if d >= channels or s >= channels:
    raise InjectionError(f'state has {channels} channels: no rule {max(source, dest)}')
  a_s = x[..., s:s + 1]
  onehot_s = tf.one_hot(s, channels, dtype=x.dtype)
  onehot_d = tf.one_hot(d, channels, dtype=x.dtype)
  moved = a_s * mask
  return x - moved * onehot_s + moved * onehot_d


def parse_injection(spec):
  """Parses 'square:2', 'spray:0.03', 'spray:3%', 'checkerboard' or a manifest dict.

  Returns:
    A dict: {'kind': 'square', 'side': int} | {'kind': 'spray', 'rate': float} |
    {'kind': 'checkerboard', 'period': int}.

  Raises:
    InjectionError: naming the bad spec and the accepted forms.
  """
  if isinstance(spec, dict):
    spec = dict(spec)
    kind = spec.get('kind')
    if kind == 'square' and int(spec.get('side', 0)) >= 1:
      return {'kind': 'square', 'side': int(spec['side'])}
    if kind == 'spray' and 0.0 < float(spec.get('rate', -1)) <= 1.0:
      return {'kind': 'spray', 'rate': float(spec['rate'])}
    if kind == 'checkerboard' and int(spec.get('period', 1)) >= 1:
      return {'kind': 'checkerboard', 'period': int(spec.get('period', 1))}
    raise InjectionError(f'bad injection {spec!r}; expected {RANGES}')
  text = str(spec).strip()
  m = re.fullmatch(r'square:(\d+)', text)
  if m and int(m.group(1)) >= 1:
    return {'kind': 'square', 'side': int(m.group(1))}
  m = re.fullmatch(r'spray:([0-9.]+)(%?)', text)
  if m:
    try:
      rate = float(m.group(1)) / (100.0 if m.group(2) else 1.0)
    except ValueError:
      rate = -1.0
    if 0.0 < rate <= 1.0:
      return {'kind': 'spray', 'rate': rate}
  m = re.fullmatch(r'checkerboard(?::(\d+))?', text)
  if m and int(m.group(1) or 1) >= 1:
    return {'kind': 'checkerboard', 'period': int(m.group(1) or 1)}
  raise InjectionError(f'bad injection {text!r}; expected {RANGES}')


def injection_mask(x, spec, padding='zeros', rng=None):
  """The mask of a parsed or textual injection spec for multi state `x`."""
  spec = parse_injection(spec)
  if spec['kind'] == 'square':
    return square_mask(x, spec['side'], padding, rng)
  if spec['kind'] == 'spray':
    return spray_mask(x, spec['rate'], rng)
  return checkerboard_mask(x, spec['period'])


def describe(spec):
  """A short label: 'square2', 'spray3%', 'checkerboard'."""
  spec = parse_injection(spec)
  if spec['kind'] == 'square':
    return f"square{spec['side']}"
  if spec['kind'] == 'spray':
    return f"spray{spec['rate'] * 100:g}%"
  return 'checkerboard'
