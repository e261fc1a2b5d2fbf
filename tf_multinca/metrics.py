"""Metrics and losses of states: the Multiple NCA's takeover (SPEC section 3) and the single NCA."""

import tensorflow as tf

from tf_multinca import layout
from tf_multinca import perception

MATURE = perception.ALIVE_THRESHOLD


def _alphas(x):
  return x[..., layout.MULTI_ALPHA0:]


def rgba_view(x):
  """`[RGB, sum_i A_i]` `[B, H, W, 4]` of a multi state."""
  return tf.concat([x[..., layout.RGB], tf.reduce_sum(_alphas(x), -1, keepdims=True)], -1)


def target_loss(x, target):
  """`L_target` per sample `[B]`: mean over pixels and 4 channels of `([RGB, sum A] - T)^2`.

  Args:
    x: `[B, H, W, 15 + k]` multi state.
    target: `[H, W, 4]` padded target.
  """
  return tf.reduce_mean(tf.square(rgba_view(x) - target), axis=[1, 2, 3])


def old_cells(x, rule=0):
  """`N_old` per sample `[B]`: the sum of rule `rule`'s alpha over the grid (differentiable)."""
  a = layout.multi_alpha(rule)
  return tf.reduce_sum(x[..., a], axis=[1, 2])


def _projections(channels, rule):
  """0/1 matrices of a multi state's channels: `[C, 4]` to `[RGB, sum_i A_i]`, `[C, 1]` to
  rule `rule`'s alpha."""
  rgba = [[0.0] * 4 for _ in range(channels)]
  for c in range(3):
    rgba[c][c] = 1.0
  for c in range(layout.MULTI_ALPHA0, channels):
    rgba[c][3] = 1.0
  old = [[1.0 if c == layout.multi_alpha(rule) else 0.0] for c in range(channels)]
  return tf.constant(rgba, tf.float32), tf.constant(old, tf.float32)


def target_and_old(x, target, rule=0):
  """(`target_loss`, `old_cells`) of one state, equal to theirs (products with 0/1 matrices
  are exact), without slicing the channels: a training rollout takes both at every step, and
  their gradient is then two small matmuls, where each slice's gradient would build a
  full-size zero tensor per step (measured: a tenth of a train step's time).

  Args:
    x: `[B, H, W, 15 + k]` multi state.
    target: `[H, W, 4]` padded target.

  Returns:
    (`[B]` L_target, `[B]` N_old of rule `rule`, `[B, H, W, 4]` the RGBA view).
  """
  c = x.shape[-1]
  to_rgba, to_old = _projections(c, rule)
  flat = tf.reshape(x, [-1, c])
  shape = tf.shape(x)[:3]
  rgba = tf.reshape(tf.matmul(flat, to_rgba), tf.concat([shape, [4]], 0))
  lt = tf.reduce_mean(tf.square(rgba - target), axis=[1, 2, 3])
  n_old = tf.reduce_sum(tf.reshape(tf.matmul(flat, to_old), shape), axis=[1, 2])
  return lt, n_old, rgba


def alive_cells(x):
  """`[B]` count of cells with `max_i A_i > 0.1`."""
  big = tf.reduce_max(_alphas(x), -1)
  return tf.reduce_sum(tf.cast(big > MATURE, tf.float32), axis=[1, 2])


def original_fraction(x, rule=0):
  """`[B]` `count(A_rule > 0.1) / count(max_i A_i > 0.1)` (0 where nothing is alive)."""
  a = layout.multi_alpha(rule)
  orig = tf.reduce_sum(tf.cast(x[..., a] > MATURE, tf.float32), axis=[1, 2])
  return tf.math.divide_no_nan(orig, alive_cells(x))


def takeover_metrics(x, target=None):
  """All per-sample metrics of one state as a dict of `[B]` tensors."""
  out = {'original_fraction': original_fraction(x), 'alive': alive_cells(x)}
  if target is not None:
    out['mse'] = target_loss(x, target)
  return out


def single_target_loss(x, target):
  """The single NCA's loss per sample `[B]`: mean over pixels and 4 channels of
  `(RGBA - T)^2`, `x` `[B, H, W, 16]`, `target` `[H, W, 4]` (Distill's loss)."""
  return tf.reduce_mean(tf.square(x[..., :layout.ALPHA + 1] - target), axis=[1, 2, 3])


def single_alive_cells(x):
  """`[B]` count of cells of a single state `[B, H, W, 16]` with alpha > 0.1."""
  return tf.reduce_sum(tf.cast(x[..., layout.ALPHA] > MATURE, tf.float32), axis=[1, 2])


def flat_weights(model):
  """All trainable variables of `model` flattened into one vector."""
  return tf.concat([tf.reshape(v, [-1]) for v in model.trainable_variables], 0)


def weight_distance(adversary, original):
  """`d = sqrt(mean((w_adv - w_orig)^2))` over all parameters (SPEC section 3)."""
  return tf.sqrt(tf.reduce_mean(tf.square(flat_weights(adversary) - flat_weights(original))))


def cosine_similarity(adversary, original):
  """Cosine similarity of the flattened parameter vectors."""
  a, b = flat_weights(adversary), flat_weights(original)
  return tf.reduce_sum(a * b) / (tf.norm(a) * tf.norm(b) + 1e-12)
