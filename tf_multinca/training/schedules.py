"""Loss-weight schedules over the age of a sample, and learning-rate schedules.

A loss weight `l(n)` is a scale times a shape over `n`, the number of steps since injection
(SPEC section 3). Within one rollout the shape is normalised so that the weighted sum is an
average over the steps where the shape is non-zero; a rollout that never reaches the window
contributes 0.
"""

import tensorflow as tf

keras = tf.keras

SHAPES = ('window', 'sigmoid', 'exponential')


def _in_range(n, start, end):
  mask = n >= float(start) if start is not None else tf.ones_like(n, tf.bool)
  if end is not None and end >= 0:
    mask = tf.logical_and(mask, n <= float(end))
  return mask


def normalised_weights(ages, shape='window', start=0, end=-1, width=8.0):
  """Per-step loss weights of one rollout, normalised per sample.

  Args:
    ages: `[T, B]` age (steps since injection) of each sample after each step of the rollout.
    shape: 'window' (1 on `[start, end]`), 'sigmoid' (`sigmoid((n - start) / width)` up to
      `end`) or 'exponential' (`exp((n - start) / width)` on `[start, end]`).
    start: first age of the window (the sigmoid's midpoint).
    end: last age of the window; -1 for none.
    width: steps of the sigmoid's or the exponential's rise.

  Returns:
    `[T, B]` float32 weights; each column sums to 1, or to 0 where the rollout has no weight.
  """
  if shape not in SHAPES:
    raise ValueError(f'weight shape {shape!r}; expected one of {SHAPES}')
  n = tf.cast(ages, tf.float32)
  if shape == 'window':
    raw = tf.cast(_in_range(n, start, end), tf.float32)
  elif shape == 'sigmoid':
    raw = tf.sigmoid((n - float(start)) / width) * tf.cast(_in_range(n, None, end), tf.float32)
  else:
    mask = _in_range(n, start, end)
    # Subtract the column's largest exponent so that old samples do not overflow.
    logits = tf.where(mask, (n - float(start)) / width, tf.fill(tf.shape(n), -1e30))
    top = tf.reduce_max(logits, axis=0, keepdims=True)
    raw = tf.where(mask, tf.exp(logits - top), tf.zeros_like(n))
  return tf.math.divide_no_nan(raw, tf.reduce_sum(raw, axis=0, keepdims=True))


def learning_rate(config):
  """The optimiser's learning rate: a float or a `keras.optimizers.schedules` schedule."""
  if config.lr_schedule == 'constant':
    return config.lr
  if config.lr_schedule == 'piecewise':
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        list(config.lr_boundaries), list(config.lr_values))
  return keras.optimizers.schedules.ExponentialDecay(
      config.lr, config.lr_decay_steps, config.lr_decay_rate, staircase=True)


def current_lr(optimizer):
  """The learning rate the optimiser applies at its current iteration (a float)."""
  lr = optimizer.learning_rate
  return float(lr.numpy() if hasattr(lr, 'numpy') else lr)
