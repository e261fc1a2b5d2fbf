"""The Distill-faithful single NCA as a Keras model (SPEC section 2)."""

import numpy as np
import tensorflow as tf

from tf_multinca import errors
from tf_multinca import conventions as conv_lib
from tf_multinca import fast
from tf_multinca import layout
from tf_multinca import perception

keras = tf.keras

# Canonical names of the rule's tensors, in Keras layout; every loader produces these.
WEIGHT_NAMES = ('conv1/kernel', 'conv1/bias', 'conv2/kernel', 'conv2/bias')


def weight_shapes(channel_n=layout.CHANNEL_N, hidden_n=layout.HIDDEN_UNITS):
  """Expected shape of each canonical tensor."""
  p = layout.perception_n(channel_n)
  return {
      'conv1/kernel': (1, 1, p, hidden_n),
      'conv1/bias': (hidden_n,),
      'conv2/kernel': (1, 1, hidden_n, channel_n),
      'conv2/bias': (channel_n,),
  }


class WeightMismatchError(errors.Error, ValueError):
  """Weights that do not fit the model: lists every missing, unexpected and mis-shaped tensor."""

  def __init__(self, source, missing=(), unexpected=(), misshaped=()):
    self.source, self.missing, self.unexpected = source, list(missing), list(unexpected)
    self.misshaped = list(misshaped)  # (name, got, expected)
    parts = []
    if self.missing:
      parts.append('missing: ' + ', '.join(self.missing))
    if self.unexpected:
      parts.append('unexpected: ' + ', '.join(self.unexpected))
    if self.misshaped:
      parts.append('mis-shaped: ' + ', '.join(
          f'{n} has shape {tuple(g)}, expected {tuple(e)}' for n, g, e in self.misshaped))
    super().__init__(f'weights from {source} do not fit the model ({"; ".join(parts)})')


def check_weights(weights, source, channel_n=layout.CHANNEL_N, hidden_n=layout.HIDDEN_UNITS):
  """Checks a canonical weight dict's names and shapes.

  Raises:
    WeightMismatchError: naming every missing, unexpected or mis-shaped tensor.
  """
  expected = weight_shapes(channel_n, hidden_n)
  missing = [n for n in expected if n not in weights]
  unexpected = [n for n in weights if n not in expected]
  misshaped = [(n, np.shape(weights[n]), expected[n]) for n in expected
               if n in weights and tuple(np.shape(weights[n])) != expected[n]]
  if missing or unexpected or misshaped:
    raise WeightMismatchError(source, missing, unexpected, misshaped)


def max_weight_difference(a, b):
  """The largest absolute difference between two canonical weight dicts (0.0: equal)."""
  return max(float(np.max(np.abs(np.asarray(a[n]) - np.asarray(b[n])))) for n in WEIGHT_NAMES)


def make_seed(batch, size, channel_n=layout.CHANNEL_N, convention='distill'):
  """The single-NCA seed: one live cell at `[H // 2, W // 2]`.

  Args:
    batch: number of seeds.
    size: grid side `S` or `(H, W)`; None for the convention's grid.
    convention: 'all_channels' seeds set alpha and every hidden channel to 1 (Distill);
      'alpha_only' seeds set only alpha (paper).

  Returns:
    `[batch, H, W, channel_n]` float32 tensor.
  """
  c = conv_lib.get_convention(convention)
  h, w = _hw(size, c)
  x = np.zeros([batch, h, w, channel_n], np.float32)
  if c.seed == 'all_channels':
    x[:, h // 2, w // 2, layout.ALPHA:] = 1.0
  else:
    x[:, h // 2, w // 2, layout.ALPHA] = 1.0
  return tf.constant(x)


def _hw(size, convention):
  if size is None:
    return convention.grid_size, convention.grid_size
  if isinstance(size, int):
    return size, size
  h, w = size
  return int(h), int(w)


def uniform_noise(shape, rng=None):
  """Uniform [0, 1) noise. `rng` a `tf.random.Generator` (checkpointable, reproducible) or None
  for `tf.random.uniform` (the op TF.js accepts)."""
  if rng is None:
    return tf.random.uniform(shape)
  return rng.uniform(shape)


def sparse_masks(x, fire, padding):
  """The sparse step's masks before its update, from the state alone.

  Args:
    x: `[B, H, W, C]` single-layout state.
    fire: `[B, H, W, 1]` float fire mask.
    padding: the grid edge.

  Returns:
    (`[B, H, W, 1]` bool pre-update alive mask, `[B * H * W]` bool cells whose update can
    reach the output: firing, and alive or next to an alive cell, since a new alpha enters
    that neighbour's post-update mask; elsewhere the step zeroes it).
  """
  pre_life = perception.alive_mask(x, padding)
  near = perception.maxpool3x3(tf.cast(pre_life, tf.float32), padding) > 0.0
  return pre_life, tf.reshape(tf.logical_and(near, fire > 0.0), [-1])


def life_mask(x, pre_life, padding):
  """`[B, H, W, 1]` float: alive before (`pre_life`) and after the update (`x`)."""
  return tf.cast(tf.logical_and(pre_life, perception.alive_mask(x, padding)), tf.float32)


def life_masked(x, pre_life, padding):
  """(`x * life`, `life`): the state after the step's alive masking, and its `life_mask`."""
  life = life_mask(x, pre_life, padding)
  return x * life, life


def _times(g, life):
  return g * life


# Compiled copies for the sparse step: elementwise work and 3x3 max-pools on one channel, where
# XLA fuses what TF runs as a dozen small kernels (docs/PERFORMANCE.md). Traced and compiled
# once per input shape.
_sparse_masks_xla = tf.function(sparse_masks, jit_compile=True)
_life_masked_xla = tf.function(life_masked, jit_compile=True)
_times_xla = tf.function(_times, jit_compile=True)


def masked_by_life(x, pre_life, padding):
  """`x * life_mask(x, pre_life, padding)`, compiled, with its gradient written out.

  The mask is piecewise constant in the state: the gradient is `g * life`. Both multiplies
  run compiled: TF's multiply by a `[B, H, W, 1]` mask broadcast over the channels was the
  largest non-matmul op of nca_growing's train step (docs/PERFORMANCE.md).

  Args:
    x: `[B, H, W, C]` the updated state.
    pre_life: `[B, H, W, 1]` bool, alive before the update.
    padding: the grid edge.

  Returns:
    `[B, H, W, C]`.
  """

  @tf.custom_gradient
  def masked(x):
    y, life = _life_masked_xla(x, pre_life, padding)
    return y, lambda g: _times_xla(g, life)

  return masked(x)


@keras.utils.register_keras_serializable(package='tf_multinca')
class CAModel(keras.Model):
  """The Growing NCA: perceive, update rule, stochastic update, alive masking.

  Call: `ca(x, fire_rate=None, angle=0.0, step_size=1.0, rng=None, noise=None, prepared=None)`
  on `[B, H, W, channel_n]` returns the next state, exactly as the reference of `convention`
  does. A rollout passes `prepared=ca.prepare(angle)`, built once before its loop.
  The fire mask comes from `noise` (`[B, H, W, 1]` uniform numbers) when given, else from `rng`
  (a `tf.random.Generator`), else from `tf.random.uniform`.

  `impl`: 'sparse' (default) runs the rule only on the cells whose update can reach the output
  (firing, and alive or next to an alive cell); 'reference' (or 'dense') is the readable
  formulation on every cell, with static shapes (XLA, TF.js export). Both give equal results.
  `init_seed`: seed of the first layer's Glorot-uniform initialisation (None: unseeded).
  `precision`: 'float32' (default, exact) or 'mixed_bfloat16': the sparse step's two rule
  matmuls run in bfloat16, everything else (state, masks, weights) stays float32.
  """

  def __init__(self, channel_n=layout.CHANNEL_N, fire_rate=0.5, hidden_n=layout.HIDDEN_UNITS,
               convention='distill', impl='sparse', init_seed=None, precision='float32',
               **kwargs):
    super().__init__(**kwargs)
    self.impl = fast.check_impl(impl)
    self.precision = fast.check_precision(precision)
    self.channel_n = int(channel_n)
    self.fire_rate = float(fire_rate)
    self.hidden_n = int(hidden_n)
    self.convention = conv_lib.get_convention(convention)
    self.init_seed = init_seed
    # Distill's initialisation: Glorot-uniform first layer (seeded by `init_seed`, so that a
    # training run starts from the same rule), zero biases.
    self.conv1 = keras.layers.Conv2D(
        self.hidden_n, 1, activation='relu', name='conv1',
        kernel_initializer=keras.initializers.GlorotUniform(seed=init_seed))
    # Zero-initialised last layer: an untrained rule does nothing (Distill).
    self.conv2 = keras.layers.Conv2D(self.channel_n, 1, kernel_initializer='zeros', name='conv2')
    self.conv1.build((None, None, None, layout.perception_n(self.channel_n)))
    self.conv2.build((None, None, None, self.hidden_n))
    self.built = True  # weights exist before the first call, so loaders can assign them

  @property
  def padding(self):
    return self.convention.padding

  def perceive(self, x, angle=0.0):
    """`[B, H, W, C]` -> `[B, H, W, 3C]` under this model's edge convention."""
    return perception.perceive(x, angle, self.padding)

  def rule(self, x, angle=0.0, step_size=1.0):
    """The update `dx` `[B, H, W, C]` before the stochastic mask: rule(perceive(x)) * step_size."""
    return self.conv2(self.conv1(self.perceive(x, angle))) * step_size

  def fire(self, x, fire_rate=None, rng=None, noise=None):
    """The `[B, H, W, 1]` float mask of cells that update this step.

    `noise`: pre-drawn uniform [0, 1) numbers `[B, H, W, 1]` (else drawn from `rng`), so that a
    batch split over replicas fires exactly as the whole batch would.
    """
    if fire_rate is None:
      fire_rate = self.fire_rate
    if noise is None:
      noise = uniform_noise(tf.shape(x[..., :1]), rng)
    return perception.fire_mask(noise, fire_rate, self.convention.fire_inclusive)

  def alive(self, x):
    """`[B, H, W, 1]` bool alive mask under this model's edge convention."""
    return perception.alive_mask(x, self.padding)

  def prepare(self, angle=0.0):
    """The rule's matrices for a rollout of sparse steps at `angle` (`fast.prepare_single`), to
    pass to each `call(..., prepared=)`; None under the readable form."""
    return fast.prepare_single(self, angle) if self.impl == 'sparse' else None

  def call(self, x, fire_rate=None, angle=0.0, step_size=1.0, rng=None, noise=None,
           prepared=None):
    if self.impl != 'sparse':
      return self.reference_call(x, fire_rate, angle, step_size, rng, noise)
    fire = self.fire(x, fire_rate, rng, noise)
    pre_life, need = _sparse_masks_xla(x, fire, self.padding)
    x = tf.reshape(fast.sparse_single_update(x, need, self, step_size, angle, prepared),
                   tf.shape(x))
    return masked_by_life(x, pre_life, self.padding)

  def reference_call(self, x, fire_rate=None, angle=0.0, step_size=1.0, rng=None, noise=None):
    """The readable step (SPEC section 2) on every cell; `call` with `impl='reference'`."""
    pre_life = self.alive(x)
    x = x + self.rule(x, angle, step_size) * self.fire(x, fire_rate, rng, noise)
    life = tf.logical_and(pre_life, self.alive(x))
    return x * tf.cast(life, tf.float32)

  def seed(self, batch=1, size=None):
    """This model's seed `[batch, H, W, C]` (see `make_seed`)."""
    return make_seed(batch, size, self.channel_n, self.convention)

  def get_config(self):
    config = super().get_config()
    config.update(channel_n=self.channel_n, fire_rate=self.fire_rate, hidden_n=self.hidden_n,
                  convention=self.convention.name, impl=self.impl,
                  init_seed=self.init_seed, precision=self.precision)
    return config

  @classmethod
  def from_config(cls, config):
    return cls(**config)

  # Canonical weights.
  def get_rule_weights(self):
    """The rule's tensors as a dict of NumPy arrays under `WEIGHT_NAMES`."""
    return {
        'conv1/kernel': self.conv1.kernel.numpy(), 'conv1/bias': self.conv1.bias.numpy(),
        'conv2/kernel': self.conv2.kernel.numpy(), 'conv2/bias': self.conv2.bias.numpy(),
    }

  def set_rule_weights(self, weights, source='a weight dict'):
    """Assigns a canonical weight dict after checking every name and shape.

    Raises:
      WeightMismatchError: naming what is missing, unexpected or mis-shaped; nothing is assigned.
    """
    check_weights(weights, source, self.channel_n, self.hidden_n)
    self.conv1.kernel.assign(np.asarray(weights['conv1/kernel'], np.float32))
    self.conv1.bias.assign(np.asarray(weights['conv1/bias'], np.float32))
    self.conv2.kernel.assign(np.asarray(weights['conv2/kernel'], np.float32))
    self.conv2.bias.assign(np.asarray(weights['conv2/bias'], np.float32))
    return self
