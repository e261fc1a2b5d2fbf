"""Where a train step's samples come from: fresh organisms and the pool policy.

Fresh samples are the seed (a single NCA) or an organism grown by the original and injected
(an adversary; while pre-training every cell is handed to the adversary). The pool policy picks
a batch from the device-resident `pool.SamplePool` and replaces some of it: the highest loss
first ('worst', Distill), or only samples past `max_age` ('expired'), then damages the best.
Everything is tensor ops drawing from one `tf.random.Generator`, traced inside the train step.
"""

import numpy as np
import tensorflow as tf

from tf_multinca import injection as inj
from tf_multinca.training import pool as pool_lib

PRETRAIN_INJECTION = 'spray:1.0'  # pre-training: every cell of the grown organism the adversary's


class Samples:
  """Fresh samples and batches of one run.

  Args:
    config: the run's `TrainConfig`.
    grid: grid side.
    rng: the run's `tf.random.Generator`.
    pool: its `pool.SamplePool`, or None (fresh batches only).
    grower: adversary: the original alone as a `MultiNCA` (grows fresh organisms); None for a
      single NCA.
    seed_model: single NCA: the model whose `seed` starts a sample.
    padding: the convention's padding (where an injection square fits).
  """

  def __init__(self, config, grid, rng, pool, grower=None, seed_model=None, padding='circular'):
    self.config = config
    self.grid = grid
    self.rng = rng
    self.pool = pool
    self.grower = grower
    self.seed_model = seed_model
    self.padding = padding
    self.is_adversary = grower is not None
    if self.is_adversary:
      self.injection = inj.parse_injection(config.injection)
      self.pretrain_injection = inj.parse_injection(PRETRAIN_INJECTION)
    # One traced copy per stage, for filling the pool outside the train step.
    self._fresh_fns = {p: tf.function(lambda n, p=p: self.fresh(n, p)) for p in (False, True)}

  def fresh(self, n, pretrain=False):
    """`n` fresh samples `[n, H, W, C]`: a seed (nca) or a grown, injected organism (while
    pre-training, every cell of it handed to the adversary)."""
    if not self.is_adversary:
      return self.seed_model.seed(n, self.grid)
    c = self.config
    x = self.grower.seed(n, self.grid)
    grow = self.rng.uniform([], c.inject_min, c.inject_max + 1, tf.int32)
    for _ in tf.range(grow):
      x = self.grower(x, fire_rate=c.fire_rate, rng=self.rng)
    x = tf.concat([x, tf.zeros_like(x[..., :1])], -1)
    spec = self.pretrain_injection if pretrain else self.injection
    mask = inj.injection_mask(x, spec, self.padding, self.rng)
    return inj.inject(x, mask)

  def batch(self, pretrain=False):
    """(pool indices or None, states `[B, H, W, C]`, ages `[B]`) of the next batch, with the
    replacements and damage applied."""
    c = self.config
    b = c.batch_size
    if self.pool is None:
      return None, self.fresh(b, pretrain), tf.zeros([b], tf.int32)
    idx = self.pool.sample(b, self.rng)
    x, ages, losses = self.pool.gather(idx)
    score = losses
    if self.is_adversary:
      # Samples past max_age go first: the pool keeps revisiting the takeover itself.
      score = tf.where(ages > c.max_age, tf.fill([b], np.float32(np.inf)), losses)
    order = tf.argsort(score, direction='DESCENDING')
    idx, x, ages = tf.gather(idx, order), tf.gather(x, order), tf.gather(ages, order)
    r = c.replace_worst
    if r:
      fresh_ages = tf.zeros([r], tf.int32)
      if c.replace_policy == 'expired':
        # The expired come first in `order`; the others keep their state and age. Fresh
        # organisms are grown only when one has expired (in ~2 steps of 5 for lizard_red):
        # growing them at every step cost ~10 % of its train step.
        expired = ages[:r] > c.max_age
        fresh = tf.cond(tf.reduce_any(expired), lambda: self.fresh(r, pretrain),
                        lambda: x[:r])
        fresh = tf.where(expired[:, None, None, None], fresh, x[:r])
        fresh_ages = tf.where(expired, fresh_ages, ages[:r])
      else:
        fresh = self.fresh(r, pretrain)
      x = tf.concat([fresh, x[r:]], 0)
      ages = tf.concat([fresh_ages, ages[r:]], 0)
    if c.damage_n:
      keep = pool_lib.circle_damage(tf.shape(x[-c.damage_n:]), self.rng)
      if c.damage_min_age:  # an adversary's organism is damaged once it has taken over
        old = ages[-c.damage_n:] >= c.damage_min_age
        keep = tf.where(old[:, None, None, None], keep, tf.ones_like(keep))
      x = tf.concat([x[:-c.damage_n], x[-c.damage_n:] * keep], 0)
    return idx, x, ages

  def fill_pool(self, pretrain=False):
    """Fills the whole pool with fresh samples (16 at a time: grown organisms are large)."""
    chunk = max(1, min(16, self.pool.size))
    for start in range(0, self.pool.size, chunk):
      n = min(chunk, self.pool.size - start)
      self.pool.fill(self._fresh_fns[pretrain](n), start)
