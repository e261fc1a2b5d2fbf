"""A researcher's own experiment: the takeover's target, pairings from a training workdir, the
convention check in training, no-op injections, registered names without a variable."""

import ast
import json
import os
import pathlib
import shlex
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from test_model import random_weights
from tf_multinca import CAModel, configs, export, hub, injection, pretrained, registry, takeover
from tf_multinca import targets, weights_file
from tf_multinca.training import loop, summaries

REPO = pathlib.Path(__file__).resolve().parents[1]
RED = 'paper/lizard/virus/lizard_persist_to_red_squareside_2'


def run_tool(tool, *args, **env):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', **env)
  env.pop(registry.LOCAL_MANIFEST_ENV, None)
  return subprocess.run([sys.executable, '-m', f'tools.{tool}', *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)


def fake_workdir(path, overrides=(), adversary=RED):
  """A training workdir as an adversary run leaves it: config.json and the exported weights."""
  config = configs.get_config('lizard_red_testing', list(overrides))
  path.mkdir(parents=True)
  (path / hub.WORKDIR_CONFIG).write_text(json.dumps(config.to_dict()))
  weights_file.save(pretrained.load(adversary), path / hub.WORKDIR_WEIGHTS[0])
  return path


# 1. The takeover's MSE is measured against the adversary's target.

def test_an_adversary_brings_its_recorded_target():
  r = hub.load_pairing(original='paper/lizard/persist', adversary=RED)
  assert r.target == 'paper/images/lizard_red'  # not the original's paper/images/lizard
  assert 'recorded' in r.target_source and r.injection == {'kind': 'square', 'side': 2}
  r = hub.load_pairing(original='paper/lizard/persist', adversary=RED, injection='spray:0.1',
                       target='paper/images/lizard_blue')
  assert r.target == 'paper/images/lizard_blue' and r.target_source == '--target'
  assert any('--injection=spray:0.1 overrides' in m for m in r.messages)
  assert any('--target=paper/images/lizard_blue overrides' in m for m in r.messages)


def test_no_recorded_target_means_no_mse(tmp_path):
  adv = CAModel(convention='paper').set_rule_weights(random_weights(3))
  weights = weights_file.save(adv, tmp_path / 'mine.weights.h5')
  r = hub.load_pairing(original='paper/lizard/persist', adversary=str(weights),
                       injection='spray:0.5')
  assert r.target is None and r.target_array is None
  assert 'MSE is not reported' in r.target_source
  lines = []
  result, paths = takeover.run_named(tmp_path / 'out', name='mine', steps_before=10,
                                     steps_after=3, seeds=1, original='paper/lizard/persist',
                                     adversary=str(weights), injection='spray:0.5',
                                     log=lines.append)
  assert np.isnan(result.metrics['mse']).all()
  assert 'mse' not in json.loads(paths['json'].read_text())['per_step']
  assert lines == [f'target: none ({r.target_source})']


def test_a_training_workdir_is_a_pairing(tmp_path):
  work = fake_workdir(tmp_path / 'run', ['injection=spray:0.5',
                                         'target=paper/images/lizard_blue'])
  for r in (hub.load_pairing(str(work)), hub.load_pairing(adversary=str(work))):
    assert r.original_name == 'paper/lizard/persist' and r.adversary_name == str(work)
    assert r.target == 'paper/images/lizard_blue' and r.messages == ()
    assert r.injection == {'kind': 'spray', 'rate': 0.5}
  r = hub.load_pairing(str(work), injection='square:2')
  assert r.messages == ('--injection=square:2 overrides the recorded injection spray50%',)
  assert hub.pairing_injection(str(work)) == 'spray:0.5'
  nca = tmp_path / 'nca'
  nca.mkdir()
  (nca / hub.WORKDIR_CONFIG).write_text(json.dumps(configs.get_config(
      'nca_paper_persistent_testing').to_dict()))
  with pytest.raises(hub.HubError, match='pass it as --original'):
    hub.load_pairing(str(nca))


def _help_example():
  """The command of `tools.takeover --help` that names an --original and an --adversary."""
  doc = ast.get_docstring(ast.parse((REPO / 'tf_multinca/apps/takeover.py').read_text()))
  commands = doc.replace('\\\n', ' ').splitlines()
  return next(shlex.split(c) for c in commands if '--adversary=' in c)


@pytest.mark.slow
def test_the_help_example_reports_the_mse_against_the_adversarys_target(tmp_path):
  argv = _help_example()
  assert argv[:3] == ['python', '-m', 'tools.takeover']
  args = [a for a in argv[3:] if not a.startswith(('--seeds=', '--workdir='))]
  p = run_tool('takeover', *args, '--seeds=2', '--steps_after=40', f'--workdir={tmp_path}')
  assert p.returncode == 0, p.stderr
  assert 'target: paper/images/lizard_red (the adversary\'s recorded target)' in p.stdout
  doc = json.loads((tmp_path / 'takeover_metrics.json').read_text())
  assert doc['info']['target'] == 'paper/images/lizard_red'
  assert doc['per_step']['mse']['mean'][-1] < 0.03  # against lizard_red, not the lizard


def test_an_unknown_pairing_suggests_pairings_not_images():
  with pytest.raises(hub.HubError) as e:
    hub.load_pairing('lizzard_red')
  assert 'did you mean lizard_red' in str(e.value) and 'paper/images' not in str(e.value)


# 2. The convention check runs in training as in takeover.

@pytest.mark.slow
def test_adversary_training_refuses_an_original_of_another_convention(tmp_path):
  p = run_tool('train_adversary', '--config=lizard_red_testing',
               '--original=distill/ex2_lizard', f'--workdir={tmp_path / "run"}')
  assert p.returncode == 2, p.stderr
  assert p.stderr.strip().count('\n') == 0, p.stderr
  assert "the original uses the 'distill' convention and the adversary 'paper'" in p.stderr
  assert not (tmp_path / 'run').exists()


def test_the_convention_check_is_one_function():
  hub.check_conventions('paper', 'paper')
  hub.check_conventions(None, 'paper')  # nothing recorded: nothing to check
  with pytest.raises(hub.HubError, match="'distill' convention and the adversary 'paper'"):
    hub.check_conventions('distill', 'paper')
  a, b = CAModel(convention='paper'), CAModel(convention='distill')
  with pytest.raises(hub.HubError, match='convention'):
    takeover.run_takeover(a, b, 'square:2')


# 3. No-op injections are refused, with the ranges, everywhere.

@pytest.mark.parametrize('bad', ['spray:0', 'spray:0%', 'spray:0.0', {'kind': 'spray',
                                                                       'rate': 0}])
def test_no_op_injections_are_refused_with_the_ranges(bad):
  with pytest.raises(injection.InjectionError, match=r'spray:P \(0 < P <= 1'):
    injection.parse_injection(bad)
  with pytest.raises(configs.ConfigError, match=r'0 < P <= 1'):
    configs.get_config('lizard_red_testing', [f'injection={bad}'] if isinstance(bad, str)
                       else ['injection=spray:0'])


@pytest.mark.slow
def test_the_takeover_binary_refuses_spray_0(tmp_path):
  p = run_tool('takeover', '--pairing=lizard_red', '--injection=spray:0',
               f'--workdir={tmp_path}')
  assert p.returncode != 0 and '0 < P <= 1' in p.stderr, p.stderr


# 4. A registered name works without any environment variable.

def test_registration_goes_to_the_users_registry_by_default(tmp_path, monkeypatch):
  monkeypatch.delenv(registry.LOCAL_MANIFEST_ENV, raising=False)
  monkeypatch.setenv('XDG_CONFIG_HOME', str(tmp_path / 'config'))
  assert registry.user_manifest() == tmp_path / 'config' / 'tf_multinca' / 'registry.json'
  ca = pretrained.load('paper/lizard/persist')
  weights = weights_file.save(ca, tmp_path / 'run' / 'export' / 'model.weights.h5')
  trainer = types.SimpleNamespace(
      config=configs.get_config('nca_paper_persistent_testing'), workdir=tmp_path / 'run',
      convention=ca.convention, log=lambda m: None)
  written = loop.Trainer.register(trainer, 'local/my_disc', weights)
  assert str(registry.user_manifest()) in written
  assert hub.load('local/my_disc').convention.name == 'paper'
  r = hub.load_pairing(original='local/my_disc', adversary=RED)
  assert r.original_name == 'local/my_disc' and r.target == 'paper/images/lizard_red'
  monkeypatch.setenv(registry.LOCAL_MANIFEST_ENV, str(tmp_path / 'other.json'))
  assert registry.lookup('local/my_disc') is None  # the variable overrides the default


@pytest.mark.slow
def test_train_adversary_finds_a_registered_name_without_a_variable(tmp_path):
  config = tmp_path / 'config'
  weights = weights_file.save(pretrained.load('paper/lizard/persist'),
                              tmp_path / 'nca' / 'model.weights.h5')
  registry.register('local/my_disc', weights, convention='paper',
                    manifest=config / registry.USER_MANIFEST)
  p = run_tool('train_adversary', '--config=custom_testing', '--original=local/my_disc',
               '--steps=2', f'--workdir={tmp_path / "my_adv"}', XDG_CONFIG_HOME=str(config))
  assert p.returncode == 0, p.stderr
  # The neutral config: named after the workdir, compared with nothing.
  assert json.loads((tmp_path / 'my_adv' / 'config.json').read_text())['name'] == 'my_adv'
  assert (tmp_path / 'my_adv' / 'tensorboard' / 'my_adv').is_dir()
  assert 'published' not in p.stdout
  # The console's loss is a window's mean, the terms beside it the last step's: it says so.
  assert '(this step; step 2: target ' in p.stdout, p.stdout
  # An idempotent rerun evaluates again but does not log the final evaluation twice.
  p = run_tool('train_adversary', '--config=custom_testing', '--original=local/my_disc',
               '--steps=2', f'--workdir={tmp_path / "my_adv"}', XDG_CONFIG_HOME=str(config))
  assert p.returncode == 0, p.stderr
  assert _count(tmp_path / 'my_adv' / 'tensorboard' / 'my_adv', 'eval/strip') == 1


# 5. A neutral base config, named after its workdir.

def test_the_custom_config_compares_with_nothing_and_takes_the_workdirs_name(tmp_path):
  for name in ('custom', 'custom_testing'):
    c = configs.get_config(name)
    assert c.kind == 'adversary' and c.compare_with == '' and c.name == name
    assert configs.named_after_workdir(c, tmp_path / 'my_disc').name == 'my_disc'
  red = configs.get_config('lizard_red')
  assert configs.named_after_workdir(red, tmp_path / 'my_disc') is red


# 6. Exports go where the demo looks, with an index whatever the format.

@pytest.mark.slow
def test_export_defaults_to_the_demos_models_and_always_writes_the_index(tmp_path):
  p = subprocess.run([sys.executable, '-c', 'from tf_multinca.apps import export; '
                      'print(export.DEFAULT_OUT)'], cwd=tmp_path, capture_output=True, text=True,
                     env=dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL='3'),
                     timeout=120)
  assert p.stdout.strip() == str(REPO / 'tools' / 'web' / 'models'), p.stderr
  p = run_tool('export', '--pairing=lizard_red', '--format=webgl_json', f'--out_dir={tmp_path}')
  assert p.returncode == 0, p.stderr
  assert json.loads((tmp_path / 'index.json').read_text()) == {'models': []}
  assert 'not listed, no TF.js model (the demo reads tfjs): lizard_red' in p.stdout


# 7. The smaller ones.

@pytest.mark.slow
@pytest.mark.parametrize('tool,flag', [('takeover', '--workdir'), ('export', '--out_dir')])
@pytest.mark.parametrize('below', ['', 'sub'])
def test_an_output_directory_that_is_a_file_is_one_line(tmp_path, tool, flag, below):
  (tmp_path / 'file').write_text('x')
  p = run_tool(tool, '--pairing=lizard_red', f'{flag}={tmp_path / "file" / below}')
  assert p.returncode == 2 and 'Errno' not in p.stderr, p.stderr
  assert p.stderr.strip().count('\n') == 0 and 'an existing file' in p.stderr, p.stderr


def test_an_export_into_a_file_is_refused_in_one_line(tmp_path):
  (tmp_path / 'lizard_red').write_text('x')
  with pytest.raises(export.ExportError, match='is a file, not a directory'):
    export.export(CAModel(convention='paper'), tmp_path / 'lizard_red', formats=['webgl_json'])


@pytest.mark.slow
def test_list_configs_describes_each_config():
  p = run_tool('train_adversary', '--list_configs')
  assert p.returncode == 0, p.stderr
  lines = dict(line.split(None, 1) for line in p.stdout.splitlines()[:3])
  assert lines['custom'].startswith('your own adversary')
  assert 'paper fig. 12' in lines['bug_to_butterfly']


def test_an_rgb_png_target_is_one_message(tmp_path):
  Image.new('RGB', (8, 8), (200, 0, 0)).save(tmp_path / 'disc.png')
  with pytest.raises(targets.TargetError) as e:
    targets.build_target(str(tmp_path / 'disc.png'), 'paper')
  message = str(e.value)
  assert 'has no alpha channel (mode RGB)' in message and 'not a readable image' not in message
  assert message.count('target ') == 1


def _count(logdir, tag):
  """How many values of `tag` the event files of `logdir` hold."""
  return sum(v.tag == tag for path in pathlib.Path(logdir).glob('events.out.tfevents.*')
             for event in tf.compat.v1.train.summary_iterator(str(path))
             for v in event.summary.value)


def _tags(logdir):
  tags = set()
  for path in pathlib.Path(logdir).glob('events.out.tfevents.*'):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      tags |= {v.tag for v in event.summary.value}
  return tags


@pytest.mark.parametrize('is_adversary', [False, True])
def test_a_base_nca_run_logs_no_adversary_loss_terms(tmp_path, is_adversary):
  writer = tf.summary.create_file_writer(str(tmp_path))
  out = {'loss': 0.5, 'loss/target': 0.5, 'loss/old': 0.0, 'loss/l3': 0.0, 'alive': 100.0}
  summaries.write_train(writer, out, 1, is_adversary)
  writer.close()
  tags = _tags(tmp_path)
  assert {'train/loss', 'train/target'} <= tags
  assert ({'train/old_cells', 'train/l3'} <= tags) == is_adversary


@pytest.mark.slow
def test_own_organism_from_image_to_export(tmp_path):
  """The README's "Your own organism", on tiny PNGs and the testing configs, with no variable."""
  disc = np.zeros((16, 16, 4), np.uint8)
  yy, xx = np.mgrid[:16, :16]
  inside = (yy - 7.5) ** 2 + (xx - 7.5) ** 2 < 36
  disc[inside] = (40, 160, 40, 255)
  Image.fromarray(disc).save(tmp_path / 'disc.png')
  disc[inside] = (200, 30, 30, 255)
  Image.fromarray(disc).save(tmp_path / 'red.png')
  env = {'XDG_CONFIG_HOME': str(tmp_path / 'config')}
  p = run_tool('train_nca', '--config=nca_paper_persistent_testing',
               f'--target={tmp_path / "disc.png"}', '--register=local/my_disc',
               f'--workdir={tmp_path / "my_disc"}', **env)
  assert p.returncode == 0, p.stderr
  adv = tmp_path / 'my_disc_red'
  p = run_tool('train_adversary', '--config=custom_testing', '--original=local/my_disc',
               f'--target={tmp_path / "red.png"}', '--injection=spray:0.5', f'--workdir={adv}',
               **env)
  assert p.returncode == 0, p.stderr
  p = run_tool('takeover', f'--pairing={adv}', '--seeds=1', '--steps_after=5', '--name=mine',
               f'--workdir={tmp_path / "takeover"}', **env)
  assert p.returncode == 0, p.stderr
  assert f"target: {tmp_path / 'red.png'} (the adversary's recorded target)" in p.stdout
  info = json.loads((tmp_path / 'takeover' / 'mine_metrics.json').read_text())['info']
  assert info['original'] == 'local/my_disc' and info['target'] == str(tmp_path / 'red.png')
  p = run_tool('export', f'--pairing={adv}', '--format=webgl_json',
               f'--out_dir={tmp_path / "models"}', **env)
  assert p.returncode == 0, p.stderr
  meta = json.loads((tmp_path / 'models' / 'my_disc_red' / 'meta.json').read_text())
  assert meta['original'] == 'local/my_disc' and meta['adversary'] == str(adv)
