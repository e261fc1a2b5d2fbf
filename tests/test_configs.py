"""Named training configs: every one builds and validates; overrides and their errors."""

import dataclasses
import inspect
import re

import pytest

from tf_multinca import configs
from tf_multinca.configs import adversary, base

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


def test_paper_settings():
  c = configs.get_config(configs.DEFAULT_ADVERSARY)
  assert c.name == 'lizard_red' and c.original == 'paper/lizard/persist'
  assert c.target == 'paper/images/lizard_red' and c.injection == 'square:2'
  assert (c.l1, c.l1_start, c.l2, c.l2_start) == (1.0, 64, 1e-3, 150)
  assert c.eval_every and c.keep_best  # the exported adversary is the best validated one
  assert c.convention == 'paper' and c.inject_min == 60
  assert configs.get_config('lizard_grow_to_persist').injection == 'square:3'
  assert configs.get_config('butterfly_grow_to_persist').injection == 'spray:0.03'
  assert configs.get_config('firework_grow_to_persist').injection == 'spray:0.5'
  regimes = {(configs.get_config(r).adversary_init, configs.get_config(r).l3)
             for r in adversary.PERTURBATION_REGIMES}
  assert regimes == {('random', 0.01), ('copy', 0.01), ('copy', 0.0), ('random', 0.0)}


def test_distill_settings():
  g, p, r = (configs.get_config(n) for n in ('nca_growing', 'nca_persistent',
                                             'nca_regenerating'))
  assert g.pool_size == 0 and p.pool_size == 1024 and r.pool_size == 1024 and r.damage_n == 3
  for c in (g, p, r):
    assert (c.batch_size, c.rollout_min, c.rollout_max, c.steps) == (8, 64, 95, 8000)
    assert c.lr_boundaries == (2000,) and c.lr_values == (2e-3, 2e-4) and c.grad_norm
    assert c.convention == 'distill'
  assert configs.get_config('nca_paper_persistent').convention == 'paper'


def test_every_field_is_commented():
  source = inspect.getsource(base.TrainConfig)
  for f in dataclasses.fields(base.TrainConfig):
    line = re.search(rf'^\s+{f.name}: .*$', source, re.M)
    assert line is not None, f.name
    assert '#' in line.group(0), f'field {f.name} has no comment'


def test_overrides_are_typed():
  c = configs.get_config('lizard_red', ['lr=1e-3', 'lr_values=1e-3,1e-4', 'steps=7',
                                        'grad_norm=false', 'injection=spray:5%',
                                        'lr_boundaries=100'])
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
])
def test_bad_overrides_name_the_field(override, message):
  with pytest.raises(configs.ConfigError, match=message):
    configs.get_config('lizard_red', [override])


def test_unknown_config_lists_names():
  with pytest.raises(configs.ConfigError, match='lizard_red'):
    configs.get_config('lizard_green')


def test_lr_scales_the_whole_schedule():
  base_config = configs.get_config('lizard_red')
  c = configs.get_config('lizard_red', ['lr=1e-3'])
  assert c.lr == 1e-3
  assert c.lr_values == pytest.approx(tuple(v / 2 for v in base_config.lr_values))
  assert configs.get_config('lizard_red', ['lr_values=1e-3,5e-4,1e-4']).lr == 1e-3
  with pytest.raises(configs.ConfigError, match='disagrees'):
    configs.get_config('lizard_red', ['lr=1e-3', 'lr_values=2e-3,5e-4,1e-4'])
