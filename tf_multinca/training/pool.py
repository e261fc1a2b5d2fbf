"""A sample pool kept on the device: states, ages and last losses as variables.

Sampling, replacement and damage are tensor ops, so a train step never leaves the device and the
pool is saved with the checkpoint.
"""

import tensorflow as tf


class SamplePool(tf.Module):
  """`size` states `[size, H, W, C]` with their age and the loss of their last rollout.

  Age is counted in steps since injection (adversary) or since the seed (NCA).
  """

  def __init__(self, size, state_shape, name='pool'):
    super().__init__(name=name)
    self.size = int(size)
    self.states = tf.Variable(tf.zeros([self.size, *state_shape]), trainable=False,
                              name='states')
    self.ages = tf.Variable(tf.zeros([self.size], tf.int32), trainable=False, name='ages')
    self.losses = tf.Variable(tf.zeros([self.size]), trainable=False, name='losses')

  def sample(self, batch, rng):
    """`[batch]` int32 distinct indices drawn uniformly."""
    return tf.argsort(rng.uniform([self.size]))[:batch]

  def gather(self, idx):
    """(states `[B, H, W, C]`, ages `[B]`, losses `[B]`) at `idx`."""
    return (tf.gather(self.states, idx), tf.gather(self.ages, idx),
            tf.gather(self.losses, idx))

  def commit(self, idx, states, ages, losses):
    """Writes a batch back at `idx`."""
    self.states.scatter_nd_update(idx[:, None], states)
    self.ages.scatter_nd_update(idx[:, None], ages)
    self.losses.scatter_nd_update(idx[:, None], losses)

  def fill(self, states, start=0):
    """Writes `states` `[n, ...]` at `[start, start + n)` with age 0 and loss 0."""
    n = tf.shape(states)[0]
    idx = tf.range(start, start + n)
    self.commit(idx, states, tf.zeros([n], tf.int32), tf.zeros([n]))


def circle_damage(shape, rng):
  """Distill's damage: a random disc per sample, `[n, H, W, 1]` float (0 inside, 1 outside).

  The centre is uniform in the middle half of the grid and the radius in [0.1, 0.4] of the
  half-side, in coordinates where the grid spans [-1, 1].
  """
  n, h, w = shape[0], shape[1], shape[2]
  ys = tf.linspace(-1.0, 1.0, h)[None, :, None]
  xs = tf.linspace(-1.0, 1.0, w)[None, None, :]
  centre = rng.uniform([n, 2], -0.5, 0.5)
  radius = rng.uniform([n, 1, 1], 0.1, 0.4)
  d2 = (ys - centre[:, 0, None, None]) ** 2 + (xs - centre[:, 1, None, None]) ** 2
  return tf.cast(d2 >= radius ** 2, tf.float32)[..., None]
