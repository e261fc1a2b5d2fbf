"""The training binaries end to end: outputs, TensorBoard, resume after kill -9, NaN, flags,
registration and the format round trips of a trained model."""

import dataclasses
import json
import os
import pathlib
import re
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tf_multinca import configs
from tf_multinca import hub
from tf_multinca import registry
from tf_multinca import weights_file
from tf_multinca import zoo
from tf_multinca import multi
from tf_multinca import saved_model
from tf_multinca import model as model_lib
from tf_multinca.training import loop, sweep

# End to end: every test here builds a Trainer or runs a binary (the quick tier,
# `pytest -m 'not slow'`, leaves them out).
pytestmark = pytest.mark.slow

REPO = pathlib.Path(__file__).resolve().parents[1]


def env_for(mirror, **extra):
  return dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', TF_MULTINCA_MIRROR=str(mirror), **extra)


def run_tool(tool, *args, mirror, timeout=300, **extra):
  return subprocess.run([sys.executable, '-m', f'tools.{tool}', *args], cwd=REPO,
                        env=env_for(mirror, **extra), capture_output=True, text=True,
                        timeout=timeout)


def read_events(logdir):
  """{tag: [(step, value or image)]} through TensorBoard's own event reader."""
  from tensorboard.backend.event_processing import event_accumulator
  acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={'tensors': 0})
  acc.Reload()
  out = {}
  for tag in acc.Tags()['tensors']:
    out[tag] = [(e.step, tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)]
  return out, acc


def test_train_adversary_end_to_end(tmp_path, mirror):
  work = tmp_path / 'run'
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  p = run_tool('train_adversary', '--config=lizard_red_testing', f'--workdir={work}',
               mirror=mirror)
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  assert p.returncode == 0, p.stderr
  # CPU time, not wall time: the CI machine's cores are shared (typically ~15 s).
  assert (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) < 45
  assert 'ETA' in p.stdout and 'final evaluation' in p.stdout
  doc = json.loads((work / 'metrics.json').read_text())
  assert doc['steps'] == 6 and doc['kind'] == 'adversary'
  for k in ('original_fraction', 'alive', 'mse', 'weight_distance', 'cosine_similarity'):
    assert np.isfinite(doc['eval'][k]), k
  assert (work / 'export' / 'adversary.weights.h5').is_file()
  adv, info = saved_model.read(work / 'export' / 'saved_model')
  assert info['rules'] == 2 and info['config'] == 'lizard_red_testing'
  loaded = tf.saved_model.load(str(work / 'export' / 'saved_model'))
  x = multi.multi_seed(1, 24, 2, 'paper')
  assert saved_model.call_signature(loaded.rollout, x, steps=5).shape == (1, 24, 24, 17)
  # The run is named after the config, its scalars sorted into sections.
  events, acc = read_events(work / 'tensorboard' / 'lizard_red_testing')
  for tag in ('train/loss', 'train/target', 'train/old_cells', 'takeover/original_fraction',
              'takeover/alive', 'weights/distance', 'weights/one_minus_cosine',
              'weights/grad_norm', 'optim/lr', 'optim/rollout_steps', 'optim/mean_age'):
    assert [s for s, _ in events[tag]] == list(range(1, 7)), tag
  scalars = [t for t in events if acc.SummaryMetadata(t).plugin_data.plugin_name == 'scalars']
  assert all(t.split('/')[0] in ('train', 'takeover', 'weights', 'optim', 'valid', 'eval')
             for t in scalars), scalars
  for constant in ('seeds', 'inject_at', 'no_injection', 'steps_after_injection'):
    assert f'eval/{constant}' not in events and f'valid/{constant}' not in events
  assert events['train/pool'][0][1].shape[0] == 3  # width, height, PNG (an image summary)
  assert 'eval/strip' in events and 'eval/original_fraction' in events
  assert [s for s, _ in events['valid/mse']] == [3, 6]  # the testing config's eval_every=3
  assert doc['best']['step'] in (3, 6) and doc['export']
  hparams = {t for t in events if acc.SummaryMetadata(t).plugin_data.plugin_name == 'hparams'}
  assert hparams == {'_hparams_/experiment', '_hparams_/session_start_info'}, hparams
  from tensorboard.plugins.hparams import plugin_data_pb2
  meta = plugin_data_pb2.HParamsPluginData.FromString(
      acc.SummaryMetadata('_hparams_/experiment').plugin_data.content)
  assert [m.name.tag for m in meta.experiment.metric_infos] == list(loop.HPARAM_METRICS)
  fields = {h.name for h in meta.experiment.hparam_infos}
  # Fields that differ between the paper's configs (the injection; the target loss from age 64
  # or, for the growing organisms, 20) are there; one they all share (fire rate 0.5) is not.
  assert {'name', 'injection', 'l1_start'} <= fields and 'debug_nan_step' not in fields
  assert 'fire_rate' not in fields
  # Only the varying fields: far fewer than the config has (62), not every field.
  assert len(fields) < len(dataclasses.fields(configs.base.TrainConfig)) // 2


def test_kill_and_resume(tmp_path, mirror):
  work = tmp_path / 'run'
  args = ['--config=lizard_red_testing', f'--workdir={work}', '--steps=40',
          '--set=checkpoint_every=2', '--set=log_every=1']
  proc = subprocess.Popen([sys.executable, '-m', 'tools.train_adversary', *args], cwd=REPO,
                          env=env_for(mirror), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
  deadline = time.time() + 120
  while not (work / 'checkpoints' / 'checkpoint').exists():
    assert proc.poll() is None, proc.communicate()
    assert time.time() < deadline
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.communicate()
  killed_at = int(tf.train.latest_checkpoint(str(work / 'checkpoints')).rsplit('-', 1)[1])
  assert 0 < killed_at < 40
  assert not (work / 'metrics.json').exists()
  p = run_tool('train_adversary', *args, mirror=mirror)
  assert p.returncode == 0, p.stderr
  assert f'at step {killed_at}' in p.stdout  # resumed, not restarted
  assert 'step 1/40' not in p.stdout
  assert json.loads((work / 'metrics.json').read_text())['steps'] == 40


def test_resume_is_exact(tmp_path, mirror, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  c = configs.get_config('lizard_red_testing', ['steps=4', 'eval_steps=1', 'eval_seeds=1'])
  straight = loop.Trainer(c, tmp_path / 'a', log=lambda m: None)
  straight.run()
  loop.Trainer(c.replace(steps=2), tmp_path / 'b', log=lambda m: None).run()
  resumed = loop.Trainer(c, tmp_path / 'b', log=lambda m: None)
  resumed.run()
  a, b = straight.trainee.get_rule_weights(), resumed.trainee.get_rule_weights()
  assert model_lib.max_weight_difference(a, b) < 1e-5
  np.testing.assert_allclose(straight.pool.states.numpy(), resumed.pool.states.numpy(),
                             atol=1e-4)
  assert int(resumed.optimizer.iterations.numpy()) == 4


def test_nan_stops_and_keeps_the_last_good_checkpoint(tmp_path, mirror):
  work = tmp_path / 'run'
  # The learning rate jumps to 1e38 after step 5 (the testing schedule's boundary is 4): the
  # update of step 6 blows the weights up and step 7's loss is not finite.
  args = ['--config=lizard_red_testing', f'--workdir={work}', '--steps=10',
          '--set=checkpoint_every=4']
  p = run_tool('train_adversary', *args, '--set=lr_values=2e-3,1e38', mirror=mirror)
  assert p.returncode == 3, p.stderr
  assert 'diverged' in p.stderr and 'at step 6' in p.stderr and '--set=lr=' in p.stderr
  assert tf.train.latest_checkpoint(str(work / 'checkpoints')).endswith('ckpt-4')
  assert not (work / 'metrics.json').exists()
  # The advised resume with a sane learning rate is accepted and finishes.
  p = run_tool('train_adversary', *args, mirror=mirror)
  assert p.returncode == 0, p.stderr
  assert 'at step 4' in p.stdout


@pytest.mark.parametrize('args, message', [
    (['--no_such_flag=1'], 'no_such_flag'),
    (['--config=lizard_green'], '--config must be one of'),
    (['--set=lr=-1'], 'config field lr'),
    (['--set=steps'], 'key=value'),
    (['--injection=circle:2'], 'config field injection'),
    (['stray_argument'], 'unexpected arguments'),
    (['--config=nca_growing_testing'], 'use python -m tools.train_nca'),
])
def test_bad_flags_are_rejected_before_the_workdir(tmp_path, mirror, args, message):
  work = tmp_path / 'run'
  p = run_tool('train_adversary', f'--workdir={work}', *args, mirror=mirror)
  assert p.returncode == 2, p.stderr
  assert message in p.stderr
  # One line with the cause, no dump of every flag's value.
  assert p.stderr.strip().splitlines()[-1].startswith('error: ') and 'set=[' not in p.stderr
  assert not work.exists()


@pytest.mark.parametrize('tool, flag', [('train_adversary', '--original'),
                                        ('train_nca', '--register')])
def test_help_lists_the_binarys_own_flags(mirror, tool, flag):
  p = run_tool(tool, '--help', mirror=mirror)
  assert p.returncode == 0
  for f in ('--config', '--workdir', '--set', '--strategy', flag):
    assert f'  {f}:' in p.stdout, f'{f} missing from --help'
  assert 'configs/base.py' in p.stdout  # where every config field is documented


def test_changed_config_refuses_the_workdir(tmp_path, mirror):
  work = tmp_path / 'run'
  work.mkdir()
  (work / 'config.json').write_text(json.dumps(
      configs.get_config('lizard_red_testing', ['l1=0.5', 'seed=3']).to_dict()))
  p = run_tool('train_adversary', '--config=lizard_red_testing', f'--workdir={work}',
               mirror=mirror)
  assert p.returncode == 2 and 'different config (fields: l1, seed)' in p.stderr
  assert sorted(x.name for x in work.iterdir()) == ['config.json']


def test_train_nca_registers_and_round_trips(tmp_path, mirror, monkeypatch):
  work = tmp_path / 'nca'
  local = tmp_path / 'local.json'
  p = run_tool('train_nca', '--config=nca_paper_persistent_testing', f'--workdir={work}',
               '--register=local/tiny_lizard', mirror=mirror,
               TF_MULTINCA_LOCAL_MANIFEST=str(local))
  assert p.returncode == 0, p.stderr
  doc = json.loads((work / 'metrics.json').read_text())
  assert doc['kind'] == 'nca' and np.isfinite(doc['eval']['mse'])
  assert registry.lookup('local/tiny_lizard', [work / 'registered.json'])
  assert registry.lookup('local/tiny_lizard', [local])
  monkeypatch.setenv(registry.LOCAL_MANIFEST_ENV, str(local))
  trained = hub.load('local/tiny_lizard').get_rule_weights()
  # The trained rule is not the zero-initialised one, and round-trips through all 3 formats.
  assert np.abs(trained['conv2/kernel']).max() > 0
  sm, _ = saved_model.read(work / 'export' / 'saved_model')
  h5 = hub.load(work / 'export' / 'model.weights.h5').get_rule_weights()
  gl = hub.load(work / 'export' / 'model.webgl.json', 'paper').get_rule_weights()
  assert model_lib.max_weight_difference(sm, trained) == 0.0
  assert model_lib.max_weight_difference(h5, trained) == 0.0
  for name in trained:
    scale = 2 * np.abs(trained[name]).max()
    assert np.abs(gl[name] - trained[name]).max() <= scale / 255 / 2 + 1e-6
  # The registered organism is accepted as the original of an adversary run.
  p = run_tool('train_adversary', '--config=lizard_red_testing', '--original=local/tiny_lizard',
               '--steps=2', f'--workdir={tmp_path / "adv"}', mirror=mirror,
               TF_MULTINCA_LOCAL_MANIFEST=str(local))
  assert p.returncode == 0, p.stderr


def test_growing_nca_loss_falls(tmp_path, mirror, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  c = configs.get_config('nca_growing_testing', ['steps=40', 'summary_every=1', 'lr=4e-3',
                                                 'lr_values=4e-3,4e-3', 'eval_steps=4'])
  loop.train(c, tmp_path, log=lambda m: None)
  events, _ = read_events(tmp_path / 'tensorboard' / 'nca_growing_testing')
  losses = np.array([float(v) for _, v in events['train/loss']])
  assert losses[-5:].mean() < 0.7 * losses[:5].mean()


def test_perturbation_sweep_writes_table_and_plot(tmp_path, mirror, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  regimes = ['perturbation_copy_l3_testing', 'perturbation_random_testing']
  # Two steps: the weights' average (perturbation_random keeps one) starts within them.
  overrides = ['steps=2', 'eval_steps=2', 'eval_seeds=1', 'weight_average_from=1']
  out = sweep.run_sweep(tmp_path / 'one', regimes, [0.5], overrides, log=lambda m: None)
  assert len(out['rows']) == 2
  text = pathlib.Path(out['markdown']).read_text()
  assert 'perturbation_copy_l3_testing' in text and '50%' in text
  assert pathlib.Path(out['csv']).read_text().startswith('regime,rate,')
  assert Image.open(out['png']).size[0] > 300
  svg = pathlib.Path(out['png']).with_suffix('.svg').read_text()
  assert 'perturbation_copy_l3_testing (ours)' in svg and 'cosine similarity' in svg
  copy_row = out['rows'][0]
  assert copy_row['cosine_similarity'] > 0.9  # started as the original, penalised by l3
  # Two processes at once (tools.train_adversary each, logging in its run directory): the same
  # seeded runs, so the same table.
  lines = []
  fanned = sweep.run_sweep(tmp_path / 'two', regimes, [0.5], overrides, log=lines.append,
                           parallel=2)
  for a, b in zip(out['rows'], fanned['rows']):
    assert (a['regime'], a['rate'], a['steps']) == (b['regime'], b['rate'], b['steps'])
    for k in ('weight_distance', 'cosine_similarity', 'mse'):
      assert b[k] == pytest.approx(a[k], rel=1e-3, abs=1e-6), k
  for regime in regimes:
    log = sweep.run_dir(tmp_path / 'two', regime, 0.5) / sweep.LOG_FILE
    assert 'final evaluation' in log.read_text()
  assert sum(line.startswith('[') and ' done in ' in line for line in lines) == 2


def test_expired_policy_replaces_only_samples_past_max_age(tmp_path, mirror, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  c = configs.get_config('lizard_red_testing', ['replace_policy=expired', 'max_age=50',
                                                'batch_size=4', 'pool_size=4'])
  t = loop.Trainer(c, tmp_path / 'run', log=lambda m: None)
  t.restore_or_init()
  marked = np.zeros(t.pool.states.shape, np.float32) + np.arange(4)[:, None, None, None] + 7
  t.pool.states.assign(marked)
  t.pool.ages.assign([10, 20, 30, 40])
  before = t.rng.state.numpy()
  _, x, ages = t.samples.batch()  # nobody expired: nothing replaced, whatever the losses
  assert sorted(ages.numpy().tolist()) == [10, 20, 30, 40]
  assert sorted(float(v) for v in x.numpy()[:, 0, 0, 0]) == [7, 8, 9, 10]
  # ... and nothing grown: the generator drew the pool's sample and no fresh organism.
  alone = tf.random.Generator.from_state(before, t.rng.algorithm)
  t.pool.sample(4, alone)
  np.testing.assert_array_equal(t.rng.state.numpy(), alone.state.numpy())
  t.pool.ages.assign([10, 99, 30, 40])
  idx, x, ages = t.samples.batch()  # sample 1 expired: it goes first and is replaced by a fresh one
  assert int(idx[0]) == 1 and int(ages[0]) == 0
  assert sorted(ages.numpy().tolist()[1:]) == [10, 30, 40]
  assert float(x[0, 0, 0, 0]) not in (7, 8, 9, 10)  # a fresh, grown organism (empty corner)
  assert (x[0].numpy()[..., 15] > 0.1).sum() > 20
  worst = loop.Trainer(c.replace(replace_policy='worst'), tmp_path / 'w', log=lambda m: None)
  worst.restore_or_init()
  worst.pool.ages.assign([10, 20, 30, 40])
  assert int(worst.samples.batch()[2][0]) == 0  # Distill's policy always replaces one


def test_workdir_from_before_a_new_field_resumes(tmp_path, mirror, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  c = configs.get_config('lizard_red_testing')
  work = tmp_path / 'run'
  work.mkdir()
  old = json.loads(json.dumps(c.to_dict()))
  assert c.pretrain_steps == 0  # the field's default
  del old['pretrain_steps']  # written by a version without the field
  (work / 'config.json').write_text(json.dumps(old))
  loop.Trainer(c, work, log=lambda m: None)  # the default: the same run
  with pytest.raises(loop.TrainingError, match='pretrain_steps'):
    loop.Trainer(c.replace(pretrain_steps=2), work, log=lambda m: None)


def test_stop_loss_stops_at_a_validation_not_at_a_young_batch(tmp_path, mirror, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  # A copied adversary's first batches are younger than l1_start (zero loss): a criterion on
  # the training loss would stop at the first log window (step 1). The validation at step 3
  # is the first point where it may stop; with a bar no score meets, it trains to the cap.
  c = configs.get_config('perturbation_copy_l3_testing', [
      'injection=spray:0.5', 'steps=8', 'log_every=1', 'eval_every=3', 'l1_start=30',
      'stop_loss=1e6', 'stop_complete=0'])
  lines = []
  doc = loop.Trainer(c, tmp_path / 'stop', log=lines.append).run()
  assert doc['steps'] == 3 and doc['stopped_early'] and doc['met_stop_rule'], lines
  assert any('stop_loss' in line and 'step 3' in line for line in lines), lines
  assert doc['best']['step'] == 3 and doc['best']['complete']  # stop_complete=0: any share
  doc = loop.Trainer(c.replace(stop_loss=1e-9), tmp_path / 'cap', log=lambda m: None).run()
  assert doc['steps'] == 8 and not doc['stopped_early'] and not doc['met_stop_rule']
  # Met at the step cap: nothing is left to stop, but the exported weights meet it.
  doc = loop.Trainer(c.replace(steps=3), tmp_path / 'at_cap', log=lambda m: None).run()
  assert doc['steps'] == 3 and not doc['stopped_early'] and doc['met_stop_rule']
  # The same bar on the score, but a takeover asked to be complete in every seed: at 12 steps
  # after a 50 % spray original cells remain, so it trains to the cap too.
  lines = []
  doc = loop.Trainer(c.replace(stop_complete=1.0), tmp_path / 'incomplete', log=lines.append).run()
  valid = [line for line in lines if line.startswith('validation at')]
  assert doc['steps'] == 8 and not doc['stopped_early'] and valid, lines
  assert all('complete in 2/2 seeds' not in line for line in valid), valid
  assert not doc['best']['complete'] and not doc['met_stop_rule']


def checkpointed_rule_weights(config, tmp_path, work, steps):
  """{step: the trainee's rule weights in the run's checkpoint `ckpt-<step>`} of `work`."""
  probe = loop.Trainer(config, tmp_path / 'probe', log=lambda m: None)
  out = {}
  for s in steps:
    probe.checkpoint.restore(str(work / 'checkpoints' / f'ckpt-{s}')).expect_partial()
    out[s] = probe.trainee.get_rule_weights()
  return out


def test_best_validated_weights_survive_resume_and_are_exported(tmp_path, mirror, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  # A learning rate far too high: the first step is the best and later ones are worse (the raw
  # weights: the average, which lizard_red keeps, would smooth them).
  c = configs.get_config('lizard_red_testing', [
      'steps=4', 'eval_every=1', 'eval_steps=6', 'eval_seeds=2', 'checkpoint_every=1',
      'keep_checkpoints=10', 'lr=0.3', 'lr_values=0.3,0.3', 'weight_average=0'])
  work = tmp_path / 'run'
  loop.Trainer(c.replace(steps=2), work, log=lambda m: None).run()
  doc = loop.Trainer(c, work, log=lambda m: None).run()  # resumes at step 2
  events, _ = read_events(work / 'tensorboard' / 'lizard_red_testing')
  valid = {s: float(v) for s, v in events['valid/score']}
  assert sorted(valid) == [1, 2, 3, 4]
  best = min(valid, key=valid.get)
  assert doc['best']['step'] == best and doc['best']['last_step'] == 4
  assert doc['best']['valid_score'] == pytest.approx(valid[best], rel=1e-6)
  mse, frac, alive = (dict(events[f'valid/{k}'])[best] for k in ('mse', 'original_fraction',
                                                                 'alive'))
  assert valid[best] == pytest.approx(mse + 1e-3 * frac * alive, rel=1e-5)  # l1 = 1, l2 = 1e-3
  assert best < 4, valid  # the case this test is about: the last step is not the best
  # The export holds the weights of the best step's checkpoint, not the last step's.
  w = checkpointed_rule_weights(c, tmp_path, work, (best, 4))
  exported = weights_file.read(work / 'export' / 'adversary.weights.h5')
  assert model_lib.max_weight_difference(exported, w[best]) == 0.0
  assert model_lib.max_weight_difference(exported, w[4]) > 1e-3
  weights, info = saved_model.read(work / 'export' / 'saved_model')
  assert model_lib.max_weight_difference(weights, exported) == 0.0
  assert info['step'] == best and info['run_step'] == 4


def test_the_weights_average_is_resumed_validated_and_exported(tmp_path, mirror, monkeypatch):
  # weight_average: the EMA of the weights of the steps after weight_average_from (the first
  # one copied), carried across a resume; the validation judges it, the export takes it, and
  # the training goes on from the last step's own weights.
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  c = configs.get_config('lizard_red_testing', [
      'steps=5', 'eval_every=5', 'eval_steps=6', 'eval_seeds=2', 'checkpoint_every=1',
      'keep_checkpoints=10', 'weight_average=0.6', 'weight_average_from=2'])
  work = tmp_path / 'run'
  lines = []
  loop.Trainer(c.replace(steps=3, eval_every=0), work, log=lines.append).run()
  doc = loop.Trainer(c, work, log=lines.append).run()  # resumes at step 3
  w = checkpointed_rule_weights(c, tmp_path, work, (3, 4, 5))
  want = {k: 0.6 * (0.6 * w[3][k] + 0.4 * w[4][k]) + 0.4 * w[5][k] for k in w[5]}
  exported = weights_file.read(work / 'export' / 'adversary.weights.h5')
  assert model_lib.max_weight_difference(exported, want) < 1e-6
  # The checkpoint after the validation holds the trainee's own weights, not the average.
  assert model_lib.max_weight_difference(w[5], want) > 1e-4
  assert doc['weight_average'] == {'decay': 0.6, 'from_step': 2, 'steps_averaged': 3}
  assert doc['best']['step'] == 5 and doc['best']['averaged'] and doc['best']['used']
  assert any("validation at step 5 of the weights' average (3 steps" in l for l in lines), lines
  with pytest.raises(loop.TrainingError, match='weight_average'):  # not changed on resume
    loop.Trainer(c.replace(weight_average=0.9), work, log=lambda m: None)


def test_pretraining_hands_every_cell_to_the_adversary_then_refills_the_pool(
    tmp_path, mirror, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  c = configs.get_config('lizard_red_testing', ['pretrain_steps=2', 'steps=3', 'eval_every=1',
                                                'injection=square:2'])
  lines = []
  t = loop.Trainer(c, tmp_path / 'run', log=lines.append)
  t.restore_or_init()
  alpha = t.pool.states.numpy()[..., 15:]
  alive = alpha.sum(-1) >= 0.1
  assert alive.sum() > 0 and (alpha[..., 0] == 0).all()  # no original cell left to take over
  t.run()
  # The pool now holds square:2 injections: mostly original cells.
  alpha = t.pool.states.numpy()[..., 15:]
  assert (alpha[..., 0] >= 0.1).sum() > (alpha[..., 1] >= 0.1).sum()
  assert any('pre-training done at step 2' in m for m in lines), lines
  valid = [m for m in lines if m.startswith('validation at step')]
  assert [m.split()[3] for m in valid] == ['3']  # pre-training weights are not validated
  # A resumed run does not refill the pool again.
  again = loop.Trainer(c.replace(steps=4), tmp_path / 'run', log=lines.append)
  again.restore_or_init()
  before = again.pool.states.numpy()
  again._enter_stage()  # pylint: disable=protected-access
  np.testing.assert_array_equal(again.pool.states.numpy(), before)
  # A run stopped at the end of pre-training refills it when it resumes.
  cut = loop.Trainer(c, tmp_path / 'cut', log=lines.append)
  cut.restore_or_init()
  for _ in range(2):
    cut.train_step()
  cut.manager.save(checkpoint_number=2)
  resumed = loop.Trainer(c, tmp_path / 'cut', log=lines.append)
  resumed.restore_or_init()
  assert (resumed.pool.states.numpy()[..., 15] == 0).all()
  resumed._enter_stage()  # pylint: disable=protected-access
  assert (resumed.pool.states.numpy()[..., 15] >= 0.1).sum() > 0


def test_pretrain_steps_must_leave_steps_to_train():
  with pytest.raises(configs.ConfigError, match='pretrain_steps'):
    configs.get_config('lizard_red_testing', ['pretrain_steps=6'])


def test_checkpoint_from_before_the_best_weights_resumes(tmp_path, mirror, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  c = configs.get_config('lizard_red_testing')
  work = tmp_path / 'run'
  t = loop.Trainer(c, work, log=lambda m: None)
  t.restore_or_init()
  t.train_step()
  # What a checkpoint held before `best` existed.
  tf.train.Checkpoint(step=t.step, trainee=t.trainee, optimizer=t.optimizer, rng=t.rng,
                      pool=t.pool).save(str(work / 'checkpoints' / 'ckpt'))
  again = loop.Trainer(c, work, log=lambda m: None)
  assert again.restore_or_init() is not None
  assert int(again.step.numpy()) == 1
  assert int(again.best.step.numpy()) == -1
  assert model_lib.max_weight_difference(again.trainee.get_rule_weights(),
                                   t.trainee.get_rule_weights()) == 0.0
  np.testing.assert_array_equal(again.pool.states.numpy(), t.pool.states.numpy())


def test_lr_flag_changes_training(tmp_path):
  """--lr (here through the config override it maps to) reaches the optimiser: the same run
  with another learning rate ends with other weights, by the ratio of the step sizes."""
  moved = {}
  for lr in ('2e-3', '2e-2'):
    c = configs.get_config('lizard_red_testing', [f'lr={lr}', 'steps=2', 'eval_every=0'])
    t = loop.Trainer(c, tmp_path / lr, log=lambda m: None)
    t.restore_or_init()
    start = t.trainee.get_rule_weights()
    for _ in range(2):
      t.train_step()
    end = t.trainee.get_rule_weights()
    moved[lr] = max(float(np.abs(end[k] - start[k]).max()) for k in start)
  # Adam's first steps move each weight by about lr: 10x the lr, about 10x the change.
  assert 5 < moved['2e-2'] / moved['2e-3'] < 20, moved


def test_a_resume_leaves_no_duplicate_points(tmp_path, mirror, monkeypatch):
  monkeypatch.setenv('TF_MULTINCA_MIRROR', str(mirror))
  c = configs.get_config('lizard_red_testing', ['steps=6', 'eval_every=0', 'checkpoint_every=2'])
  work = tmp_path / 'run'
  loop.train(c.replace(steps=5), work, log=lambda m: None)  # checkpoints at 2, 4 and 5
  # What a kill after step 5's log but before its checkpoint leaves: checkpoint 4, points to 5.
  for f in (work / 'checkpoints').glob('ckpt-5.*'):
    f.unlink()
  (work / 'checkpoints' / 'checkpoint').unlink()
  loop.train(c, work, log=lambda m: None)  # resumes at 4, logs 5 and 6 again
  events, _ = read_events(work / 'tensorboard' / 'lizard_red_testing')
  assert [s for s, _ in events['train/loss']] == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_a_named_experiment_ends_with_the_bars_verdict_on_the_test_set(tmp_path, mirror):
  work = tmp_path / 'run'
  published = 'paper/lizard/virus/lizard_persist_to_red_squareside_2'
  p = run_tool('train_adversary', '--config=lizard_red_testing', f'--workdir={work}',
               f'--set=compare_with={published}', mirror=mirror)
  assert p.returncode == 0, p.stderr
  last = p.stdout.strip().splitlines()[-1]
  # The last line: the test set, the verdict, ours against the published on the same organisms.
  assert re.fullmatch(
      rf'bar \(held-out test set: 4 organisms, generator seed {zoo.TEST_SEED}, MSE 12 steps '
      r'after injection\): (PASSES|FAILS); complete \d/4 \(published \d\); MSE mean '
      r'\d\.\d{4} / median \d\.\d{4} / worst \d\.\d{4} \(published \d\.\d{4} / \d\.\d{4} / '
      r'\d\.\d{4}: \d+\.\d\dx mean, \d+\.\d\dx median, limit 1\.25x\)(; failed: .+)?', last), last
  doc = json.loads((work / 'metrics.json').read_text())['test_set']
  assert (doc['seeds'], doc['seed'], doc['age']) == (4, zoo.TEST_SEED, 12)
  assert doc['published']['model'] == published and doc['ours']['model'] == 'ours'
  for who in ('ours', 'published'):
    assert 0 <= doc[who]['complete'] <= 4
    assert doc[who]['mse_median'] <= doc[who]['mse_worst']
  assert doc['passed'] == all(c[3] for c in doc['checks'])
  assert [c[0] for c in doc['checks']] == ['complete takeovers', 'mean MSE', 'median MSE',
                                           'catastrophic organisms']
  mean = [c for c in doc['checks'] if c[0] == 'mean MSE'][0]
  assert mean[1] == doc['ours']['mse_mean']
  assert mean[2] == pytest.approx(zoo.MSE_FACTOR * doc['published']['mse_mean'])
  assert ('PASSES' in last) == doc['passed']
