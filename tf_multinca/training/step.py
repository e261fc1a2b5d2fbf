"""The train step: a rollout with its per-step losses, the loss schedules, outliers, gradients
summed over replicas, and the update of the trainee and the pool.

One `tf.function` per stage (pre-training or not); every random number of a step is drawn from
the run's generator for the whole batch, so a batch split over replicas fires exactly as it
would on one device.
"""

import functools

import tensorflow as tf

from tf_multinca import metrics
from tf_multinca.training import schedules

# The l3 distance at a copied initialisation is 0, where sqrt has no gradient; a tiny offset
# inside keeps it finite (0 there) without changing the value measurably.
_SQRT_EPS = 1e-12
_GRAD_EPS = 1e-8


def rule_vars(ca):
  """A CAModel's rule variables in `model.WEIGHT_NAMES` order."""
  return [ca.conv1.kernel, ca.conv1.bias, ca.conv2.kernel, ca.conv2.bias]


class TrainStep:
  """The train step of one run; `step(pretrain)` runs one and returns its outputs.

  Args:
    config: the run's `TrainConfig`.
    net: what is rolled out: the `MultiNCA` [original, trainee] or the single trainee.
    trainee: the `CAModel` trained.
    original: the frozen original (adversary) or None.
    target: `[H, W, 4]` padded target tensor.
    outside: `[H, W]` 1 outside the target's shape (the optional overgrowth penalty).
    samples: the run's `samples.Samples`.
    optimizer: a built Keras optimizer over `rule_vars(trainee)`.
    step: the int64 step variable (incremented by an applied step).
    rng: the run's `tf.random.Generator`.
    strategy: the `tf.distribute.Strategy` the models were built under.
    grid, channels: the state's side and channels.
  """

  def __init__(self, config, net, trainee, original, target, outside, samples, optimizer, step,
               rng, strategy, grid, channels):
    self.config = config
    self.net, self.trainee, self.original = net, trainee, original
    self.target, self.outside = target, outside
    self.samples, self.pool = samples, samples.pool
    self.optimizer, self.step, self.rng, self.strategy = optimizer, step, rng, strategy
    self.grid, self.channels = grid, channels
    self.is_adversary = original is not None
    self.w_orig = metrics.flat_weights(original) if self.is_adversary else None
    # Fire-mask columns per step: one per rule of the net being rolled out.
    self.noise_columns = 2 if self.is_adversary else 1
    self._fns = {p: tf.function(functools.partial(self._step, pretrain=p)) for p in (False, True)}

  def __call__(self, pretrain=False):
    """One train step of the given stage: a dict of its outputs (tensors), 'ok' False when the
    loss or the gradient was not finite (then nothing was applied)."""
    return self._fns[bool(pretrain)]()

  def weight_distance(self):
    """The l3 term's d(w_adv, w_orig), differentiable at 0: sqrt(mean((w_adv - w_orig)^2))
    ('rms') or sqrt(sum(...)) ('norm'), by `config.l3_distance`."""
    sq = tf.square(metrics.flat_weights(self.trainee) - self.w_orig)
    total = tf.reduce_sum(sq) if self.config.l3_distance == 'norm' else tf.reduce_mean(sq)
    return tf.sqrt(total + _SQRT_EPS)

  def loss_weights(self, ages, steps):
    """Per-step `[T, B]` weights of a rollout of `steps` steps from samples aged `ages` `[B]`:
    (l1 x the target schedule, the N_old schedule), normalised per sample (`schedules`); the
    rollout multiplies N_old by l2 (and adds the l_outside term) before weighting it."""
    c = self.config
    n = ages[None, :] + tf.range(1, steps + 1)[:, None]  # [T, B] age after each step
    return (c.l1 * schedules.normalised_weights(n, c.l1_schedule, c.l1_start, c.l1_end,
                                                c.l1_width),
            schedules.normalised_weights(n, c.l2_schedule, c.l2_start, c.l2_end, c.l2_width))

  def rollout(self, x, noise, ages):
    """Rolls `x` out `T` steps firing by `noise` `[T, B, H, W, rules]`.

    Returns:
      (final state, per-sample `[B]` loss, its L_target part, its N_old part). An adversary's
      parts are sums over the steps of the loss terms weighted by `loss_weights(ages, T)`,
      accumulated as the rollout goes (no per-step arrays); a single NCA's loss is its final
      state's MSE to the target.
    """
    c = self.config
    steps = tf.shape(noise)[0]
    # The rules' matrices once per rollout, not once per step (and once in the gradient).
    prepared = self.net.prepare()
    if not self.is_adversary:
      for i in tf.range(steps):
        x = self.net(x, fire_rate=c.fire_rate, noise=noise[i], prepared=prepared)
      target = metrics.single_target_loss(x, self.target)
      return x, target, target, tf.zeros_like(target)
    w1, w2 = self.loss_weights(ages, steps)
    part_target = part_old = tf.zeros([tf.shape(x)[0]])
    for i in tf.range(steps):
      x = self.net(x, fire_rate=c.fire_rate, noise=noise[i], prepared=prepared)
      lt, n_old, rgba = metrics.target_and_old(x, self.target)
      old = c.l2 * n_old
      if c.l_outside:
        old += c.l_outside * tf.reduce_sum(tf.nn.relu(rgba[..., 3]) * self.outside, [1, 2])
      part_target += w1[i] * lt
      part_old += w2[i] * old  # l2 N_old (+ l_outside overgrowth)
    return x, part_target + part_old, part_target, part_old

  def _replica_step(self, x0, ages, noise):
    """One replica's share of a train step: its slice of the batch, rolled out under the tape.

    Args:
      x0: the whole batch `[B, H, W, C]`; ages `[B]`; noise `[T, B, H, W, rules]`.

    Returns:
      A dict: this replica's gradients (of its share of the batch loss: the shares sum to the
      loss), loss share, final states `[B / replicas, ...]` and per-sample losses.
    """
    c = self.config
    ctx = tf.distribute.get_replica_context()
    replicas = ctx.num_replicas_in_sync
    b = c.batch_size // replicas
    start = ctx.replica_id_in_sync_group * b
    x0 = tf.ensure_shape(x0[start:start + b], [b, self.grid, self.grid, self.channels])
    ages = ages[start:start + b]
    noise = noise[:, start:start + b]
    variables = rule_vars(self.trainee)  # the adversary only: the original stays frozen
    with tf.GradientTape() as tape:
      x, per_sample, part_target, part_old = self.rollout(x0, noise, ages)
      # Outliers are judged against the mean of the whole batch, over every replica.
      keep = tf.ones_like(per_sample)
      if c.outlier_factor:
        total = ctx.all_reduce(tf.distribute.ReduceOp.SUM,
                               tf.stop_gradient(tf.reduce_sum(per_sample)))
        keep = tf.cast(tf.stop_gradient(per_sample) <= c.outlier_factor * total / c.batch_size,
                       tf.float32)
      kept = ctx.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(keep))
      loss = tf.reduce_sum(keep * per_sample) / tf.maximum(kept, 1.0)
      part_l3 = tf.constant(0.0)
      if self.is_adversary and c.l3:
        part_l3 = c.l3 * self.weight_distance()
        loss += part_l3 / replicas
    return {'grads': tape.gradient(loss, variables), 'loss': loss, 'x': x,
            'per_sample': per_sample, 'target': part_target, 'old': part_old, 'keep': keep,
            'l3': part_l3}

  def _step(self, pretrain=False):
    c = self.config
    idx, x0, ages = self.samples.batch(pretrain)
    steps = self.rng.uniform([], c.rollout_min, c.rollout_max + 1, tf.int32)
    # Every random number of the rollout is drawn here for the whole batch, so a batch split
    # over replicas fires exactly as it would on one device.
    noise = self.rng.uniform(tf.concat([[steps], tf.shape(x0)[:3], [self.noise_columns]], 0))
    r = self.strategy.run(self._replica_step, args=(x0, ages, noise))
    total = lambda v: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
    whole = lambda v: self.strategy.gather(v, axis=0)
    grads = [total(g) for g in r['grads']]
    loss = total(r['loss'])
    x, per_sample, keep = whole(r['x']), whole(r['per_sample']), whole(r['keep'])
    part_target, part_old = whole(r['target']), whole(r['old'])
    part_l3 = self.strategy.reduce(tf.distribute.ReduceOp.MEAN, r['l3'], axis=None)
    variables = rule_vars(self.trainee)
    grad_norm = tf.linalg.global_norm(grads)
    ok = tf.logical_and(tf.math.is_finite(loss), tf.math.is_finite(grad_norm))
    if c.grad_norm:
      grads = [g / (tf.norm(g) + _GRAD_EPS) for g in grads]
    lr = self.optimizer.learning_rate
    if ok:
      self.optimizer.apply_gradients(zip(grads, variables))
      if self.pool is not None:
        self.pool.commit(idx, x, ages + steps, per_sample)
      self.step.assign_add(1)
    out = {
        'loss': loss, 'loss/target': tf.reduce_mean(part_target),
        'loss/old': tf.reduce_mean(part_old), 'loss/l3': part_l3,
        'loss/max_sample': tf.reduce_max(per_sample),
        'outliers_dropped': tf.reduce_sum(1.0 - keep),
        'grad_norm': grad_norm, 'ok': ok, 'rollout_steps': steps,
        'lr': lr if isinstance(lr, tf.Tensor) else tf.convert_to_tensor(lr),
        'mean_age': tf.reduce_mean(tf.cast(ages + steps, tf.float32)),
    }
    if self.is_adversary:
      out['original_fraction'] = tf.reduce_mean(metrics.original_fraction(x))
      out['alive'] = tf.reduce_mean(metrics.alive_cells(x))
      out['weight_distance'] = metrics.weight_distance(self.trainee, self.original)
      out['cosine_similarity'] = metrics.cosine_similarity(self.trainee, self.original)
    else:
      out['alive'] = tf.reduce_mean(metrics.single_alive_cells(x))
    out['x'] = x
    return out
