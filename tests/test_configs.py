"""Named training configs: every one builds and validates; overrides and their errors."""

import pytest

from tf_multinca import configs
from tf_multinca.configs import base

PAPER_EXPERIMENTS = ('lizard_red', 'lizard_red_spray', 'lizard_no_tail', 'bug_to_butterfly',
                     'lizard_grow_to_persist', 'butterfly_grow_to_persist',
                     'firework_grow_to_persist', 'perturbation_random_l3', 'perturbation_copy_l3',
                     'perturbation_copy', 'perturbation_random')
DISTILL_EXPERIMENTS = ('nca_growing', 'nca_persistent', 'nca_regenerating',
                       'nca_paper_persistent')


@pytest.mark.parametrize('name', configs.names())
def test_every_config_validates(name):
  c = configs.get_config(name)
  assert c.name == name
  base.validate(c)
  if name.endswith('_testing'):
    assert c.steps <= 10 and c.grid_size <= 32 and c.eval_steps <= 20


def test_every_experiment_has_a_config():
  for name in PAPER_EXPERIMENTS:
    assert configs.get_config(name).kind == 'adversary'
  for name in DISTILL_EXPERIMENTS:
    assert configs.get_config(name).kind == 'nca'


def test_distill_settings():
  g, p, r = (configs.get_config(n) for n in ('nca_growing', 'nca_persistent',
                                             'nca_regenerating'))
  assert g.pool_size == 0 and p.pool_size == 1024 and r.pool_size == 1024 and r.damage_n == 3
  for c in (g, p, r):
    assert (c.batch_size, c.rollout_min, c.rollout_max, c.steps) == (8, 64, 95, 8000)
    assert c.lr_boundaries == (2000,) and c.lr_values == (2e-3, 2e-4) and c.grad_norm
    assert c.convention == 'distill'
  assert configs.get_config('nca_paper_persistent').convention == 'paper'


def test_overrides_are_typed():
  c = configs.get_config('lizard_red', ['lr=1e-3', 'lr_values=1e-3,1e-4', 'steps=7',
                                        'grad_norm=false', 'injection=spray:5%',
                                        'lr_boundaries=100', 'weight_average_from=0'])
  assert c.lr == 1e-3 and c.lr_values == (1e-3, 1e-4) and c.steps == 7
  assert c.grad_norm is False and c.injection == 'spray:5%' and c.lr_boundaries == (100,)


@pytest.mark.parametrize('override, message', [
    ('nosuchfield=1', 'unknown config field'),
    ('steps=many', 'config field steps'),
    ('steps=0', 'config field steps'),
    ('injection=circle:3', 'config field injection'),
    ('lr_values=1e-3', 'config field lr_values'),
    ('adversary_init=zeros', 'config field adversary_init'),
    ('l1_schedule=cosine', 'config field l1_schedule'),
    ('grad_norm=maybe', 'config field grad_norm'),
    ('justtext', 'key=value'),
    ('target_alpha_cut=1', 'config field target_alpha_cut'),
    ('target_alpha_cut=-0.1', 'config field target_alpha_cut'),
    ('weight_average=1', 'config field weight_average'),
    ('weight_average=-0.5', 'config field weight_average'),
    ('weight_average_from=99999', 'config field weight_average_from'),
])
def test_bad_overrides_name_the_field(override, message):
  with pytest.raises(configs.ConfigError, match=message):
    configs.get_config('lizard_red', [override])


def test_stop_loss_needs_validations():
  # The criterion is read on the validation score; without validations it would never act.
  with pytest.raises(configs.ConfigError, match='stop_loss.*eval_every'):
    configs.get_config('lizard_red', ['stop_loss=0.01', 'eval_every=0'])
  assert configs.get_config('lizard_red', ['stop_loss=0.01']).stop_loss == 0.01


def test_unknown_config_lists_names():
  with pytest.raises(configs.ConfigError, match='lizard_red'):
    configs.get_config('lizard_green')


def test_lr_scales_the_whole_schedule():
  base_config = configs.get_config('lizard_red')
  c = configs.get_config('lizard_red', ['lr=1e-3'])
  assert c.lr == 1e-3
  assert c.lr_values == pytest.approx(tuple(v / 2 for v in base_config.lr_values))
  assert configs.get_config('lizard_red', ['lr_values=1e-3,5e-4,1e-4,3e-5']).lr == 1e-3
  with pytest.raises(configs.ConfigError, match='disagrees'):
    configs.get_config('lizard_red', ['lr=1e-3', 'lr_values=2e-3,5e-4,1e-4,3e-5'])
