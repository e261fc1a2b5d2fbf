"""Named configs of Distill's Growing NCA experiments (Mordvintsev et al. 2020).

Shared (Distill): batch 8, 64..95 steps per rollout, Adam at 2e-3 dropping to 2e-4 at step 2000,
per-variable gradient normalisation, 8000 steps, the loss at the last step of the rollout.
"""

from tf_multinca.configs import base

DISTILL_NCA = base.TrainConfig(
    kind='nca',
    original='',  # an nca run has no original
    target='🦎',  # the 2019 noto-emoji lizard
    convention='distill',
    batch_size=8,
    rollout_min=64, rollout_max=95,
    replace_worst=1,
    lr=2e-3, lr_schedule='piecewise', lr_boundaries=(2000,), lr_values=(2e-3, 2e-4),
    grad_norm=True,
    outlier_factor=0.0,  # Distill keeps every sample
    steps=8000,
    checkpoint_every=200,
    image_every=200,
    log_every=20,
    summary_every=10,
    eval_steps=200,  # grow 200 steps from the seed and compare with the target
)


def growing():
  """Experiment 1: every batch starts from the seed (no pool)."""
  return DISTILL_NCA.replace(description='Distill experiment 1: growing', pool_size=0,
                             replace_worst=0)


def persistent():
  """Experiment 2: a pool of 1024; the worst sample of each batch is reseeded."""
  return DISTILL_NCA.replace(description='Distill experiment 2: persistent (pool)',
                             pool_size=1024)


def regenerating():
  """Experiment 3: the pool plus circular damage on the 3 best samples of each batch."""
  return DISTILL_NCA.replace(description='Distill experiment 3: regenerating (pool + damage)',
                             pool_size=1024, damage_n=3)


def paper_persistent():
  """An organism for the takeover experiments: the paper convention (48x48, straight colours,
  torus), persistent training on the paper's lizard image."""
  return persistent().replace(description='persistent lizard in the paper convention',
                              convention='paper', target='paper/images/lizard')


def testing(config):
  """A tiny variant of `config` for tests: 24x24 grid, 2 samples, short rollouts."""
  return config.replace(
      grid_size=24, batch_size=2, pool_size=0 if config.pool_size == 0 else 8, rollout_min=4,
      rollout_max=6, damage_n=min(config.damage_n, 1), steps=6, lr_boundaries=(4,),
      checkpoint_every=2, summary_every=1, image_every=3, log_every=1, eval_seeds=2,
      eval_steps=8)


CONFIGS = {'nca_' + f.__name__: f for f in (growing, persistent, regenerating, paper_persistent)}
