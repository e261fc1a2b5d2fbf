"""The training loop under tf.distribute.MirroredStrategy on 2 logical CPU devices.

TensorFlow fixes its logical devices when it first runs an op, so the distributed runs happen
in a fresh Python process.
"""

import json
import os
import pathlib
import re
import socket
import subprocess
import sys
import time
import types

import numpy as np
import pytest

from tf_multinca import configs, weights_file
from tf_multinca.training import distribute, loop

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


# ----------------------------------------------------------------------------------------------
# Multi-worker: two worker processes on 127.0.0.1, as two hosts would run them.

def _free_ports(n):
  socks = [socket.socket() for _ in range(n)]
  for s in socks:
    s.bind(('127.0.0.1', 0))
  ports = [s.getsockname()[1] for s in socks]
  for s in socks:
    s.close()
  return ports


def test_the_readme_commands_are_one_job_of_two_workers():
  (a, argv_a), (b, argv_b) = readme_commands()
  assert argv_a == argv_b and '--strategy=multi_worker' in argv_a
  assert distribute.parse_tf_config(a)[1:] == ('worker', 0)
  assert distribute.parse_tf_config(b)[1:] == ('worker', 1)


def _tf_config(cluster, index):
  return json.dumps({'cluster': cluster, 'task': {'type': 'worker', 'index': index}})


def readme_commands():
  """The README's two-host commands: [(TF_CONFIG, argv)] of "Running on several machines"."""
  text = (REPO / 'README.md').read_text(encoding='utf-8')
  section = text[text.index('### Running on several machines'):]
  found = re.findall(r"TF_CONFIG='([^']+)' \\\n\s+python (-m tools\.\S+ .+)", section)
  assert len(found) == 2, 'the README section lost its two commands'
  return [(tf_config, argv.split()) for tf_config, argv in found]


def _launch_workers(work, mirror, args, logs):
  """The README's commands, the host names replaced by 127.0.0.1 and free ports, on the tiny
  config and a temporary workdir."""
  hosts = [f'127.0.0.1:{p}' for p in _free_ports(2)]
  procs = []
  for i, (tf_config, argv) in enumerate(readme_commands()):
    tf_config = tf_config.replace('host1:12345', hosts[0]).replace('host2:12345', hosts[1])
    assert json.loads(tf_config)['task']['index'] == i
    argv = [a.replace('--config=lizard_red', '--config=lizard_red_testing')
            if a == '--config=lizard_red' else
            f'--workdir={work}' if a.startswith('--workdir=') else a for a in argv]
    env = dict(_env(mirror), TF_CONFIG=tf_config, TF_NUM_INTRAOP_THREADS='1',
               TF_NUM_INTEROP_THREADS='1', **{distribute.TIMEOUT_ENV: '10'})
    out = open(logs[i], 'w', encoding='utf-8')  # pylint: disable=consider-using-with
    procs.append((subprocess.Popen([sys.executable, *argv, *args], cwd=REPO, env=env,
                                   stdout=out, stderr=subprocess.STDOUT), out))
  return procs


def _stop(procs):
  for p, out in procs:
    if p.poll() is None:
      p.kill()
    p.wait()
    out.close()


@pytest.mark.slow
def test_two_workers_follow_one_device_and_resume_after_losing_one(tmp_path, mirror,
                                                                   monkeypatch):
  work = tmp_path / 'run'
  args = ['--set=steps=10', '--set=checkpoint_every=2']
  first = [tmp_path / f'a{i}.log' for i in range(2)]
  procs = _launch_workers(work, mirror, args, first)
  try:
    deadline = time.time() + 120
    while not (work / 'checkpoints' / 'ckpt-4.index').exists():
      assert time.time() < deadline and procs[0][0].poll() is None, first[0].read_text()[-3000:]
      time.sleep(0.1)
    procs[1][0].kill()  # a host goes down mid-run
    assert procs[0][0].wait(timeout=90) == 4  # the chief fails cleanly, without hanging
  finally:
    _stop(procs)
  chief = first[0].read_text()
  assert 'a worker of the multi-worker job stopped answering' in chief
  assert "resume from the chief's last checkpoint (ckpt-" in chief
  assert not (work / 'metrics.json').exists()
  # Relaunching both with the same command resumes from the chief's last checkpoint.
  again = [tmp_path / f'b{i}.log' for i in range(2)]
  procs = _launch_workers(work, mirror, args, again)
  try:
    assert [p.wait(timeout=180) for p, _ in procs] == [0, 0], again[0].read_text()[-3000:]
  finally:
    _stop(procs)
  logs = [f.read_text() for f in again]
  assert all('resumed from ' in log and 'ckpt-' in log for log in logs)
  assert 'worker 1: trained to step 10; the chief evaluates and exports' in logs[1]
  # One set of outputs, the chief's; the other worker's temporary directory is gone.
  assert json.loads((work / 'metrics.json').read_text())['steps'] == 10
  assert sorted(p.name for p in (work / 'export').iterdir()) == [
      'adversary.weights.h5', 'adversary.weights.json', 'saved_model']
  temporary = re.search(r"this worker's go to (\S+) \(removed", logs[1]).group(1)
  assert not pathlib.Path(temporary).exists()
  # The same run on one device: the first step's loss, and the weights after the whole
  # (interrupted and resumed) run, agree to float round-off.
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  lines = []
  config = configs.get_config('lizard_red_testing', ['steps=10', 'checkpoint_every=2'])
  loop.train(config, tmp_path / 'one', log=lines.append)
  step1 = lambda text: re.search(r'^step 1/10: loss (\S+)', text, re.M).group(1)
  assert step1(chief) == step1('\n'.join(lines))
  ours = weights_file.read(work / 'export' / 'adversary.weights.h5')
  one = weights_file.read(tmp_path / 'one' / 'export' / 'adversary.weights.h5')
  for k in one:
    np.testing.assert_allclose(ours[k], one[k], atol=1e-5, err_msg=k)


@pytest.mark.parametrize('tf_config,message', [
    ('', 'needs the TF_CONFIG environment variable'),
    ('{"cluster": ', 'TF_CONFIG is not JSON'),
    ('{"cluster": {"ps": ["h:1"]}, "task": {"type": "ps", "index": 0}}', "task type 'ps'"),
    ('{"cluster": {"evaluator": ["h:1"]}, "task": {"type": "evaluator"}}',
     'neither a "chief" nor a "worker"'),
    ('{"cluster": {"worker": ["h:1", "h:2"]}, "task": {"type": "worker", "index": 2}}',
     'index 2 is out of range: the cluster has 2 worker task'),
    ('{"cluster": {"worker": ["h:1"]}, "task": {"type": "chief", "index": 0}}',
     "not one of the cluster's task types"),
    ('{"cluster": {"worker": ["host-without-port"]}, "task": {"type": "worker"}}',
     '"host:port" addresses'),
    ('{"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief"}}', '2 chiefs'),
])
def test_a_bad_tf_config_is_one_clear_error(tf_config, message):
  with pytest.raises(distribute.StrategyError, match=re.escape(message)):
    distribute.parse_tf_config(tf_config)


def test_a_good_tf_config_and_who_is_chief():
  cluster, kind, index = distribute.parse_tf_config(
      _tf_config({'worker': ['h1:5000', 'h2:5000']}, 1))
  assert (kind, index, cluster['worker'][1]) == ('worker', 1, 'h2:5000')
  assert distribute.is_chief(types.SimpleNamespace(num_replicas_in_sync=1))  # one process


@pytest.mark.slow
def test_multi_worker_binary_refuses_a_bad_tf_config(tmp_path, mirror):
  env = dict(_env(mirror), TF_CONFIG='{"cluster": {"worker": ["h:1"]}, "task": {"type": '
             '"worker", "index": 3}}')
  p = subprocess.run([sys.executable, '-m', 'tools.train_adversary', '--config=lizard_red_testing',
                      '--strategy=multi_worker', f'--workdir={tmp_path / "run"}'], cwd=REPO,
                     env=env, capture_output=True, text=True, timeout=120)
  assert p.returncode == 2
  assert p.stderr.strip().splitlines()[-1].startswith('error: TF_CONFIG task index 3 is out')
  assert not (tmp_path / 'run').exists()
