"""Perception kernels, grid padding and alive masks: small pure functions (SPEC section 2).

All tensors are NHWC float32. Nothing here holds state or weights.
"""

import numpy as np
import tensorflow as tf

from tf_multinca import layout

ALIVE_THRESHOLD = 0.1

IDENTITY = np.outer([0., 1., 0.], [0., 1., 0.]).astype(np.float32)
SOBEL_X = (np.outer([1., 2., 1.], [-1., 0., 1.]) / 8.0).astype(np.float32)  # varies along W
SOBEL_Y = SOBEL_X.T.copy()


def perception_kernels(angle=0.0):
  """The three 3x3 kernels `[I, Kx, Ky]` rotated by `angle` (radians).

  Args:
    angle: scalar float or scalar tensor.

  Returns:
    `[3, 3, 3]` float32 tensor, the last axis the kernel index k.
  """
  angle = tf.cast(angle, tf.float32)
  c, s = tf.cos(angle), tf.sin(angle)
  kx = c * SOBEL_X - s * SOBEL_Y
  ky = s * SOBEL_X + c * SOBEL_Y
  return tf.stack([tf.constant(IDENTITY), kx, ky], axis=-1)


def depthwise_filter(channel_n, angle=0.0):
  """The depthwise filter `[3, 3, channel_n, 3]`: output channel `3 * c + k`."""
  k = perception_kernels(angle)[:, :, None, :]
  return tf.tile(k, [1, 1, channel_n, 1])


def pad_circular(x, pad=1):
  """Wraps `x` `[B, H, W, C]` around a torus by `pad` cells on each side."""
  x = tf.concat([x[:, -pad:], x, x[:, :pad]], axis=1)
  return tf.concat([x[:, :, -pad:], x, x[:, :, :pad]], axis=2)


def _check_padding(padding):
  if padding not in ('zeros', 'circular'):
    raise ValueError(f"padding={padding!r}; expected 'zeros' or 'circular'")


def perceive(x, angle=0.0, padding='zeros'):
  """Depthwise cross-correlation of every channel with `[I, Kx, Ky]`.

  Args:
    x: `[B, H, W, C]` state.
    angle: rotation of the Sobel kernels, radians.
    padding: 'zeros' (Distill) or 'circular' (paper).

  Returns:
    `[B, H, W, 3 * C]`, channel `3 * c + k`.
  """
  _check_padding(padding)
  channel_n = x.shape[-1]
  w = depthwise_filter(channel_n, angle)
  if padding == 'circular':
    return tf.nn.depthwise_conv2d(pad_circular(x), w, [1, 1, 1, 1], 'VALID')
  return tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], 'SAME')


def maxpool3x3(a, padding='zeros'):
  """3x3 max-pool with stride 1 of `a` `[B, H, W, C]`.

  'zeros' ignores cells outside the grid (TF 'SAME'); 'circular' wraps around.
  """
  _check_padding(padding)
  if padding == 'circular':
    return tf.nn.max_pool2d(pad_circular(a), 3, 1, 'VALID')
  return tf.nn.max_pool2d(a, 3, 1, 'SAME')


def alive_mask(x, padding='zeros', threshold=ALIVE_THRESHOLD):
  """Single-NCA alive mask: `maxpool3x3(alpha) > threshold`.

  Args:
    x: `[B, H, W, C]` single-layout state (alpha at channel 3).

  Returns:
    `[B, H, W, 1]` bool.
  """
  return maxpool3x3(x[..., layout.ALPHA:layout.ALPHA + 1], padding) > threshold


def fire_mask(uniform, fire_rate, inclusive):
  """Stochastic-update mask from `[B, H, W, 1]` uniform noise: `<=` (Distill) or `<` (paper)."""
  if inclusive:
    return tf.cast(uniform <= fire_rate, tf.float32)
  return tf.cast(uniform < fire_rate, tf.float32)
