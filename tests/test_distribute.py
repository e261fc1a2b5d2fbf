"""The training loop under tf.distribute.MirroredStrategy on 2 logical CPU devices.

TensorFlow fixes its logical devices when it first runs an op, so the distributed runs happen
in a fresh Python process.
"""

import json
import os
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

from tf_multinca.training import distribute

REPO = pathlib.Path(__file__).resolve().parents[1]

# Trains each config for a few steps under the default strategy and under a 2-replica mirrored
# one, from the same seed, and saves what each run ends with.
_COMPARE = r'''
import json, sys
import numpy as np
import tensorflow as tf
from tf_multinca import configs
from tf_multinca.training import distribute, loop

distribute.split_cpu(2)
out_dir, names = sys.argv[1], sys.argv[2:]
report = {}
# One mirrored strategy per process: each instance numbers its collectives from the same start.
strategies = {s: distribute.make_strategy(s) for s in ('default', 'mirrored')}
for name in names:
  config = configs.get_config(name, ['steps=3'])
  for strategy_name, strategy in strategies.items():
    trainer = loop.Trainer(config, f'{out_dir}/{name}_{strategy_name}', log=lambda m: None,
                           strategy=strategy)
    trainer.restore_or_init()
    start = trainer.trainee.get_rule_weights()
    losses, dropped = [], []
    for step in range(config.steps):
      out = trainer.train_step()
      losses.append(float(out['loss']))
      dropped.append(float(out['outliers_dropped']))
      if step == 0:  # everything one train step leaves behind
        arrays = {f'w/{k}': v for k, v in trainer.trainee.get_rule_weights().items()}
        arrays.update({f'start/{k}': v for k, v in start.items()})
        arrays['x'] = out['x'].numpy()
        arrays['grad_norm'] = out['grad_norm'].numpy()
        if trainer.pool is not None:
          arrays['pool'] = trainer.pool.states.numpy()
          arrays['ages'] = trainer.pool.ages.numpy()
    np.savez(f'{out_dir}/{name}_{strategy_name}.npz', **arrays)
    kernel = trainer.trainee.conv1.kernel
    report[f'{name}_{strategy_name}'] = {
        'losses': losses, 'dropped': dropped, 'step': int(trainer.step.numpy()),
        'replicas': strategy.num_replicas_in_sync,
        'devices': (list(strategy.extended.worker_devices)
                    if strategy.num_replicas_in_sync > 1 else []),
        'variable': type(getattr(kernel, 'value', kernel)).__name__}
with open(f'{out_dir}/report.json', 'w') as f:
  json.dump(report, f)
'''

CONFIGS = ('lizard_red_testing', 'nca_regenerating_testing')


def _env(mirror):
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', TF_MULTINCA_MIRROR=str(mirror),
              PYTHONPATH=str(REPO) + os.pathsep + os.environ.get('PYTHONPATH', ''))


@pytest.fixture(scope='module')
def compared(tmp_path_factory, mirror):
  out = tmp_path_factory.mktemp('distribute')
  p = subprocess.run([sys.executable, '-c', _COMPARE, str(out), *CONFIGS], cwd=REPO,
                     env=_env(mirror), capture_output=True, text=True, timeout=600)
  assert p.returncode == 0, p.stderr[-4000:]
  return out, json.loads((out / 'report.json').read_text())


@pytest.mark.slow
def test_mirrored_really_has_two_replicas(compared):
  _, report = compared
  for name in CONFIGS:
    m = report[f'{name}_mirrored']
    assert m['replicas'] == 2 and len(set(m['devices'])) == 2, m
    assert m['variable'] == 'MirroredVariable', m
    assert report[f'{name}_default']['replicas'] == 1


@pytest.mark.slow
@pytest.mark.parametrize('name', CONFIGS)
def test_mirrored_matches_one_device(compared, name):
  out, report = compared
  one, two = report[f'{name}_default'], report[f'{name}_mirrored']
  assert one['step'] == two['step'] == 3
  # The first step agrees to float round-off. The later ones start from weights that differ
  # by round-off, which an alive threshold (alpha > 0.1) can amplify: they agree loosely.
  np.testing.assert_allclose(two['losses'][0], one['losses'][0], rtol=1e-5)
  np.testing.assert_allclose(two['losses'], one['losses'], rtol=1e-2)
  assert two['dropped'][0] == one['dropped'][0]
  a = np.load(out / f'{name}_default.npz')
  b = np.load(out / f'{name}_mirrored.npz')
  moved = 0.0
  for k in ('conv1/kernel', 'conv1/bias', 'conv2/kernel', 'conv2/bias'):
    np.testing.assert_allclose(b[f'w/{k}'], a[f'w/{k}'], atol=1e-5, err_msg=k)
    moved = max(moved, float(np.abs(a[f'w/{k}'] - a[f'start/{k}']).max()))
  assert moved > 1e-3  # both trained: the agreement is not two untouched models
  np.testing.assert_allclose(b['grad_norm'], a['grad_norm'], rtol=1e-5)
  # The whole batch came back from both replicas, in order, and went back into the pool.
  np.testing.assert_allclose(b['x'], a['x'], atol=1e-4)
  assert np.abs(a['x']).max() > 0
  if 'pool' in a:
    np.testing.assert_allclose(b['pool'], a['pool'], atol=1e-4)
    np.testing.assert_array_equal(b['ages'], a['ages'])


@pytest.mark.slow
def test_train_adversary_mirrored_binary(tmp_path, mirror):
  work = tmp_path / 'run'
  p = subprocess.run([sys.executable, '-m', 'tools.train_adversary', '--config=lizard_red_testing',
                      '--strategy=mirrored', '--cpu_devices=2', f'--workdir={work}'], cwd=REPO,
                     env=_env(mirror), capture_output=True, text=True, timeout=300)
  assert p.returncode == 0, p.stderr[-4000:]
  assert 'mirrored strategy over 2 replicas' in p.stdout
  doc = json.loads((work / 'metrics.json').read_text())
  assert doc['steps'] == 6 and np.isfinite(doc['eval']['original_fraction'])
  assert (work / 'export' / 'adversary.weights.h5').is_file()


@pytest.mark.slow
def test_batch_that_does_not_split_is_refused(tmp_path, mirror):
  work = tmp_path / 'run'
  p = subprocess.run([sys.executable, '-m', 'tools.train_adversary', '--config=lizard_red_testing',
                      '--strategy=mirrored', '--cpu_devices=2', '--set=batch_size=3',
                      f'--workdir={work}'], cwd=REPO, env=_env(mirror), capture_output=True,
                     text=True, timeout=300)
  assert p.returncode == 2
  assert 'batch_size 3 does not split over 2 replicas' in p.stderr
  assert not (work / 'checkpoints').exists()


def test_check_batch():
  two = types.SimpleNamespace(num_replicas_in_sync=2)
  distribute.check_batch(8, two)
  with pytest.raises(distribute.StrategyError, match='multiple of 2'):
    distribute.check_batch(7, two)


def test_unknown_strategy():
  with pytest.raises(distribute.StrategyError, match='default, mirrored'):
    distribute.make_strategy('tpu')
