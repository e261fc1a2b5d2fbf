"""The Multiple NCA step of the paper (SPEC section 3) and the fixed-mask baseline.

State `[B, H, W, 15 + k]`: RGB, 12 hidden, then one alpha per rule (see `layout`).
"""

import tensorflow as tf

from tf_multinca import fast
from tf_multinca import layout
from tf_multinca import model as model_lib
from tf_multinca import perception

keras = tf.keras

# Mask thresholds of the multi step use `>=` (the paper); the single NCA uses `>`.
MATURE = perception.ALIVE_THRESHOLD
WEIGHT_EPS = 1e-8


def split_multi(x, k):
  """`[B,H,W,15+k]` -> (rgb `[..,3]`, hidden `[..,12]`, alphas `[..,k]`)."""
  return (x[..., layout.RGB], x[..., layout.MULTI_HIDDEN],
          x[..., layout.MULTI_ALPHA0:layout.MULTI_ALPHA0 + k])


def single_view(x, k):
  """The 16-channel view every rule perceives: `[RGB, sum_i A_i, hidden]`."""
  rgb, hidden, alphas = split_multi(x, k)
  return tf.concat([rgb, tf.reduce_sum(alphas, -1, keepdims=True), hidden], -1)


def to_multi(x, k, rule=0):
  """Single-layout `[B,H,W,16]` -> multi layout, its alpha given to `rule`."""
  alphas = [tf.zeros_like(x[..., layout.ALPHA:layout.ALPHA + 1])] * k
  alphas[rule] = x[..., layout.ALPHA:layout.ALPHA + 1]
  return tf.concat([x[..., layout.RGB], x[..., layout.HIDDEN]] + alphas, -1)


def rule_masks(alphas, padding):
  """Per-rule masks (SPEC 3.1).

  Args:
    alphas: `[B, H, W, k]`.
    padding: 'zeros' or 'circular', for the per-rule 3x3 max-pool.

  Returns:
    `[B, H, W, k]` bool: `(free & near_i) | old_i`.
  """
  big = tf.reduce_max(alphas, -1, keepdims=True)
  free = big < MATURE
  old = tf.logical_and(tf.equal(alphas, big), alphas >= MATURE)
  near = perception.maxpool3x3(alphas, padding) >= MATURE
  return tf.logical_or(tf.logical_and(free, near), old)


def apply_masks(t, masks):
  """`t` `[B, H, W, 15 + k]` masked by the rule masks `[B, H, W, k]` (float 0/1): the shared
  channels by the cell's alive mask (any rule's), each alpha by its own rule's mask. The
  masked state, and (the masks being piecewise constant in the state) its gradient too."""
  alive = tf.reduce_max(masks, -1, keepdims=True)
  return tf.concat([t[..., :layout.MULTI_ALPHA0] * alive, t[..., layout.MULTI_ALPHA0:] * masks],
                   -1)


def _masking(x, k, padding):
  """(masked state `[B, H, W, 15 + k]`, update weights `[B, H, W, k]`, float rule masks
  `[B, H, W, k]`)."""
  alphas = x[..., layout.MULTI_ALPHA0:layout.MULTI_ALPHA0 + k]
  masks = tf.cast(rule_masks(alphas, padding), tf.float32)
  weights = masks / (tf.reduce_sum(masks, -1, keepdims=True) + WEIGHT_EPS)
  return apply_masks(x, masks), weights, masks


def masked_state(x, k, padding):
  """The masking half of the step (SPEC 3.1, 3.2, 3.5), without building the view.

  Args:
    x: `[B, H, W, 15 + k]`.

  Returns:
    (masked state `[B, H, W, 15 + k]`, update weights `[B, H, W, k]`).
  """
  state, weights, _ = _masking(x, k, padding)
  return state, weights


def reference_step(rules, x, fire_rate=None, angle=0.0, step_size=1.0, rng=None, noise=None):
  """The readable Multiple NCA step (SPEC section 3), every rule on every cell.

  This is the formulation the fast paths are tested against.

  Args:
    rules: k `CAModel`s sharing one grid edge.
    x: `[B, H, W, 15 + k]`.
    noise: None, or pre-drawn uniform numbers `[B, H, W, k]` (column i fires rule i).

  Returns:
    `[B, H, W, 15 + k]`.
  """
  k = len(rules)
  state, weights = masked_state(x, k, rules[0].convention.padding)
  rgb, hidden, alphas = split_multi(state, k)
  view = single_view(state, k)
  d_shared = tf.zeros_like(view)
  d_alphas = []
  for i, r in enumerate(rules):
    dx = r.rule(view, angle, step_size) * r.fire(view, fire_rate, rng, _column(noise, i))
    w = weights[..., i:i + 1]
    d_shared += w * dx
    d_alphas.append(w * dx[..., layout.ALPHA:layout.ALPHA + 1])
  return tf.concat([rgb + d_shared[..., layout.RGB], hidden + d_shared[..., layout.HIDDEN],
                    alphas + tf.concat(d_alphas, -1)], -1)


def _column(noise, i):
  return None if noise is None else noise[..., i:i + 1]


def _coefficients_and_masks(x, fires, k, padding):
  """`coefficients` and the `[B, H, W, k]` float rule masks the state was masked with."""
  state, weights, masks = _masking(x, k, padding)
  return state, tf.reshape(weights * fires, [-1, k]), masks


def coefficients(x, fires, k, padding):
  """The masked state and each rule's per-cell coefficient (update weight x fire mask).

  Args:
    x: `[B, H, W, 15 + k]`.
    fires: `[B, H, W, k]` fire masks in {0, 1}.

  Returns:
    (masked state `[B, H, W, 15 + k]`, coefficients `[B * H * W, k]`).
  """
  state, coef, _ = _coefficients_and_masks(x, fires, k, padding)
  return state, coef


class Prologue:
  """The fast steps' masking (`coefficients`) with its gradient written out.

  The masks and the coefficients are piecewise constant in the state, so the gradient of the
  masked state `x * keep` is `g * keep` and the coefficients have none. Written out, the
  backward pass is one multiply by the saved `[B, H, W, k]` masks; differentiated by TF, it
  rebuilt the masking and its zero gradients, 18 % of a train step's time (docs/PERFORMANCE.md).

  Args:
    compiled: compile the forward and the backward with XLA (about 2x faster on CPU for
      these elementwise ops and 3x3 max-pools than TF's kernels).
  """

  def __init__(self, compiled=True):
    wrap = (lambda f: tf.function(f, jit_compile=True)) if compiled else (lambda f: f)
    self._forward = wrap(_coefficients_and_masks)
    self._backward = wrap(apply_masks)

  def __call__(self, x, fires, k, padding):
    """`coefficients(x, fires, k, padding)`, differentiable in `x` only."""

    @tf.custom_gradient
    def masked(x):
      state, coef, masks = self._forward(x, fires, k, padding)

      def grad(g_state, g_coef):
        del g_coef  # piecewise constant
        return self._backward(g_state, masks)

      return (state, coef), grad

    return masked(x)


def fast_step(rules, x, fire_rate=None, angle=0.0, step_size=1.0, rng=None, sparse=True,
              prologue=coefficients, noise=None, prepared=None):
  """The Multiple NCA step in the fast form (see `fast`): equal to `reference_step`.

  Fire masks are drawn as in `reference_step` (one `[B, H, W, 1]` draw per rule, in rule order),
  so a seeded `rng` reproduces the readable step's masks.

  Args:
    rules: k `CAModel`s sharing one grid edge.
    x: `[B, H, W, 15 + k]`.
    sparse: run each rule only where it applies and fires (needs `Where`); False for the dense
      form with static shapes (XLA).
    prologue: `coefficients`, or a `Prologue` (its gradient written out, optionally compiled).
    noise: None, or pre-drawn uniform numbers `[B, H, W, k]` (column i fires rule i).
    prepared: sparse: `fast.prepare_multi(rules, angle)`, built once for a rollout (None:
      built here).

  Returns:
    `[B, H, W, 15 + k]`.
  """
  k = len(rules)
  padding = rules[0].convention.padding
  # Drawn with the readable step's shape `[B, H, W, 1]`, so the same numbers.
  fire_like = x[..., :1]
  fires = tf.concat([r.fire(fire_like, fire_rate, rng, _column(noise, i))
                     for i, r in enumerate(rules)], -1)
  state, coef = prologue(x, fires, k, padding)
  # The coefficients are piecewise constant in the state (masks and fire draws): their gradient
  # is 0, and without this the tape would still compute it back through the prologue.
  coef = tf.stop_gradient(coef)
  # All rules see the same view: they perceive the masked state (their first layers absorb the
  # view's channel order and alpha sum, see `fast.multi_first_layer`).
  if sparse:
    out = fast.sparse_multi_update(state, coef, rules, step_size, angle, padding, prepared)
  else:
    channels = layout.multi_channels(k)
    p = tf.reshape(perception.perceive(state, angle, padding), [-1, 3 * channels])
    out = fast.dense_multi_update(tf.reshape(state, [-1, channels]), p, coef, rules, step_size)
  return tf.reshape(out, tf.shape(x))


def multi_seed(batch, size, k, convention='paper', rule=0):
  """The paper's multi seed: one cell at the centre, alive in `rule`.

  Under an 'all_channels' seed convention the seed cell's hidden channels are 1 too.

  Returns:
    `[batch, H, W, 15 + k]` float32.
  """
  return to_multi(model_lib.make_seed(batch, size, layout.CHANNEL_N, convention), k, rule)


@keras.utils.register_keras_serializable(package='tf_multinca')
class MultiNCA(keras.Model):
  """k NCA rules on one grid (the paper's Multiple NCA).

  Call: `multi(x, fire_rate=None, angle=0.0, step_size=1.0, rng=None, noise=None,
  prepared=None)` on `[B, H, W, 15 + k]` (a rollout passes `prepared=multi.prepare(angle)`,
  built once before its loop). Each rule draws its own fire mask with its own `fire_rate` unless
  `fire_rate` is given; `noise` (`[B, H, W, k]` uniform numbers, column i for rule i) replaces
  the draws, so a batch split over replicas fires as the whole batch would.

  `impl` picks the formulation, all equal in results: 'sparse' (default; each rule only on the
  cells where it applies and fires), 'dense' (every cell, static shapes: for XLA) or
  'reference' (the readable `reference_step`; TF.js export uses it, since the wasm backend
  rejects the dense form's fused matmul). `xla_masks` compiles the elementwise masking of the
  fast forms with XLA (about 2x faster for that part on CPU); False runs it as plain TF ops.
  """

  def __init__(self, rules, impl='sparse', xla_masks=True, **kwargs):
    super().__init__(**kwargs)
    self.impl = fast.check_impl(impl)
    self.xla_masks = bool(xla_masks)
    # One compiled copy per model: it is traced and compiled once per input shape.
    self._prologue = Prologue(compiled=self.xla_masks and self.impl != 'reference')
    rules = list(rules)
    if not rules:
      raise ValueError('MultiNCA needs at least one CAModel rule')
    for i, r in enumerate(rules):
      if not isinstance(r, model_lib.CAModel):
        raise TypeError(f'rule {i} is a {type(r).__name__}, expected a CAModel')
      if r.channel_n != layout.CHANNEL_N:
        raise ValueError(f'rule {i} has {r.channel_n} channels; the multi layout needs '
                         f'{layout.CHANNEL_N}')
    paddings = {r.convention.padding for r in rules}
    if len(paddings) > 1:
      raise ValueError('rules disagree on the grid edge '
                       f'({[r.convention.name for r in rules]}); load them in one convention')
    self.rules = rules
    self.k = len(rules)
    self.built = True

  @property
  def convention(self):
    return self.rules[0].convention

  @property
  def channels(self):
    return layout.multi_channels(self.k)

  def masks(self, x):
    """`[B, H, W, k]` bool rule masks of state `x`."""
    return rule_masks(split_multi(x, self.k)[2], self.convention.padding)

  def prepare(self, angle=0.0):
    """The rules' matrices for a rollout of sparse steps at `angle` (`fast.prepare_multi`), to
    pass to each `call(..., prepared=)`; None under the other forms."""
    return fast.prepare_multi(self.rules, angle) if self.impl == 'sparse' else None

  def call(self, x, fire_rate=None, angle=0.0, step_size=1.0, rng=None, noise=None,
           prepared=None):
    if self.impl == 'reference':
      return reference_step(self.rules, x, fire_rate, angle, step_size, rng, noise)
    return fast_step(self.rules, x, fire_rate, angle, step_size, rng,
                     sparse=self.impl == 'sparse', prologue=self._prologue, noise=noise,
                     prepared=prepared)

  def seed(self, batch=1, size=None, rule=0):
    """The paper's seed in `rule`'s alpha (default: the original)."""
    return multi_seed(batch, size, self.k, self.convention, rule)

  def get_config(self):
    config = super().get_config()
    config['rules'] = [r.get_config() for r in self.rules]
    config['impl'] = self.impl
    config['xla_masks'] = self.xla_masks
    return config

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    rules = [model_lib.CAModel.from_config(r) for r in config.pop('rules')]
    return cls(rules, **config)


@keras.utils.register_keras_serializable(package='tf_multinca')
class FixedMaskNCA(keras.Model):
  """Randazzo et al. 2021's baseline: each cell follows rule 0 or rule 1 for ever.

  Both rules see the same 16-channel single state; `x_out = step_0(x) (1 - M) + step_1(x) M`.
  Call: `fixed(x, mask, fire_rate=None, angle=0.0, step_size=1.0)`, mask `[B, H, W, 1]`.
  """

  def __init__(self, original, adversary, **kwargs):
    super().__init__(**kwargs)
    if original.convention.padding != adversary.convention.padding:
      raise ValueError('original and adversary disagree on the grid edge')
    self.original, self.adversary = original, adversary
    self.rules = [original, adversary]
    self.built = True

  @property
  def convention(self):
    return self.original.convention

  def call(self, x, mask, fire_rate=None, angle=0.0, step_size=1.0, rng=None):
    mask = tf.cast(mask, tf.float32)
    x0 = self.original(x, fire_rate=fire_rate, angle=angle, step_size=step_size, rng=rng)
    x1 = self.adversary(x, fire_rate=fire_rate, angle=angle, step_size=step_size, rng=rng)
    return x0 * (1.0 - mask) + x1 * mask

  def seed(self, batch=1, size=None):
    return self.original.seed(batch, size)

  def get_config(self):
    config = super().get_config()
    config['original'] = self.original.get_config()
    config['adversary'] = self.adversary.get_config()
    return config

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    original = model_lib.CAModel.from_config(config.pop('original'))
    adversary = model_lib.CAModel.from_config(config.pop('adversary'))
    return cls(original, adversary, **config)
