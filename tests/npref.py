"""A small independent NumPy implementation of SPEC sections 2 and 3, for exact-value tests.

Written from the SPEC text only, with explicit neighbourhood sums instead of convolutions.
"""

import numpy as np

I3 = np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], np.float64)
SX = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64) / 8.0
SY = SX.T


def pad(x, mode, value=0.0):
  """x [B,H,W,C] -> padded by one cell: 'zeros' (constant `value`) or 'circular'."""
  if mode == 'circular':
    return np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='wrap')
  return np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode='constant', constant_values=value)


def correlate3x3(x, kernel, mode):
  """Cross-correlation of every channel of x [B,H,W,C] with a 3x3 kernel."""
  p = pad(x, mode)
  h, w = x.shape[1], x.shape[2]
  out = np.zeros_like(x, dtype=np.float64)
  for dy in range(3):
    for dx in range(3):
      out += kernel[dy, dx] * p[:, dy:dy + h, dx:dx + w]
  return out


def kernels(angle):
  c, s = np.cos(angle), np.sin(angle)
  return [I3, c * SX - s * SY, s * SX + c * SY]


def perceive(x, angle, mode):
  ks = kernels(angle)
  outs = [correlate3x3(x, k, mode) for k in ks]  # each [B,H,W,C]
  b, h, w, c = x.shape
  y = np.zeros((b, h, w, 3 * c))
  for ci in range(c):
    for k in range(3):
      y[..., 3 * ci + k] = outs[k][..., ci]
  return y


def maxpool3x3(a, mode):
  p = pad(a, mode, value=-np.inf)
  h, w = a.shape[1], a.shape[2]
  out = np.full(a.shape, -np.inf)
  for dy in range(3):
    for dx in range(3):
      out = np.maximum(out, p[:, dy:dy + h, dx:dx + w])
  return out


def rule(y, weights):
  h = np.maximum(y @ weights['conv1/kernel'][0, 0] + weights['conv1/bias'], 0.0)
  return h @ weights['conv2/kernel'][0, 0] + weights['conv2/bias']


def single_step(x, weights, mode, angle=0.0, step_size=1.0, fire=None):
  """One single-NCA step; `fire` [B,H,W,1] in {0,1} (None = all fire)."""
  x = x.astype(np.float64)
  pre = maxpool3x3(x[..., 3:4], mode) > 0.1
  dx = rule(perceive(x, angle, mode), weights) * step_size
  if fire is not None:
    dx = dx * fire
  x = x + dx
  post = maxpool3x3(x[..., 3:4], mode) > 0.1
  return x * (pre & post)


def multi_step(x, weights_list, mode, angle=0.0, step_size=1.0):
  """One Multiple NCA step with every cell firing (SPEC 3.1-3.6)."""
  x = x.astype(np.float64)
  k = len(weights_list)
  a = x[..., 15:15 + k]
  big = a.max(-1, keepdims=True)
  free = big < 0.1
  old = (a == big) & (a >= 0.1)
  near = maxpool3x3(a, mode) >= 0.1
  mask = (free & near) | old
  alive = mask.any(-1, keepdims=True)
  x = x.copy()
  x[..., 15:15 + k] = a * mask
  x = x * alive
  view = np.concatenate([x[..., 0:3], x[..., 15:15 + k].sum(-1, keepdims=True), x[..., 3:15]], -1)
  wts = mask / (mask.sum(-1, keepdims=True) + 1e-8)
  out = x.copy()
  for i, weights in enumerate(weights_list):
    d = rule(perceive(view, angle, mode), weights) * step_size
    dm = np.zeros_like(x)
    dm[..., 0:3] = d[..., 0:3]
    dm[..., 3:15] = d[..., 4:16]
    dm[..., 15 + i] = d[..., 3]
    out = out + wts[..., i:i + 1] * dm
  return out
