"""The TF.js export in Node and the demo page in headless Chromium (tools/web).

Runs the `node --test` suites of tools/web on the lizard_red export of tests/test_export.py:
the converted step equals the Python SavedModel within 1e-5, the rollout graph stays finite and
alive, and the demo page, driven in a real headless Chromium, grows the organism, injects
adversaries and shows the takeover. Needs Node >= 18, `npm ci` in tools/web and Chromium
(`.ci/install_web.sh` installs them); when one is missing the tests fail, saying so.

The screenshots (after the growth, the injection and the takeover; TensorBoard's scalars page
of a tiny training run; a labelled evaluation strip) and the page's report go to
$TF_MULTINCA_ARTIFACTS/web (default runs/test_artifacts/web).
"""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator

from test_export import lizard_red_export  # noqa: F401  (a session fixture shared with it)

REPO = pathlib.Path(__file__).resolve().parents[1]
WEB = REPO / 'tools' / 'web'
INSTALL_HINT = 'run .ci/install_web.sh (Node, `npm ci` in tools/web, chromium-headless-shell)'


def _node():
  node = shutil.which('node')
  if node is None:
    pytest.fail(f'node is not installed: {INSTALL_HINT}')
  version = subprocess.run([node, '--version'], capture_output=True, text=True).stdout.strip()
  if int(version.lstrip('v').split('.')[0]) < 18:
    pytest.fail(f'node {version} is too old for node --test (needs >= 18): {INSTALL_HINT}')
  if not (WEB / 'node_modules' / '@tensorflow' / 'tfjs' / 'package.json').is_file():
    pytest.fail(f'tools/web/node_modules is missing @tensorflow/tfjs: {INSTALL_HINT}')
  return node


def _artifacts():
  root = pathlib.Path(os.environ.get('TF_MULTINCA_ARTIFACTS', REPO / 'runs' / 'test_artifacts'))
  path = root / 'web'
  path.mkdir(parents=True, exist_ok=True)
  return path


def _node_test(files, models, timeout, **env):
  node = _node()
  run_env = dict(os.environ, TF_MULTINCA_WEB_MODELS=str(models), **env)
  p = subprocess.run([node, '--test', *files], cwd=WEB, env=run_env, capture_output=True,
                     text=True, timeout=timeout)
  assert p.returncode == 0, f'node --test {" ".join(files)} failed:\n{p.stdout[-6000:]}\n' \
                            f'{p.stderr[-3000:]}'
  return p.stdout


@pytest.mark.slow
def test_tfjs_step_matches_saved_model_and_rollout_lives(lizard_red_export):  # noqa: F811
  out = _node_test(['test/nca.test.mjs', 'test/model.test.mjs'], lizard_red_export, 300)
  assert '# fail 0' in out


def _check_chromium():
  names = [os.environ.get('CHROME_BIN'), 'chromium-headless-shell', 'chromium',
           '/usr/lib/chromium/chromium-headless-shell']
  if not any(n and (shutil.which(n) or os.path.isfile(n)) for n in names):
    pytest.fail(f'no headless Chromium (chromium-headless-shell, chromium or $CHROME_BIN): '
                f'{INSTALL_HINT}')


@pytest.mark.slow
def test_demo_page_in_headless_chromium(lizard_red_export):  # noqa: F811
  _check_chromium()
  artifacts = _artifacts()
  for old in artifacts.glob('demo_lizard_red*'):
    old.unlink()
  out = _node_test(['test/browser.test.mjs'], lizard_red_export, 400,
                   TF_MULTINCA_WEB_ARTIFACTS=str(artifacts), TF_MULTINCA_WEB_PAIRING='lizard_red')
  assert '# fail 0' in out
  for moment in ('grown', 'injected', 'takeover'):  # the screenshots of the three moments
    shot = artifacts / f'demo_lizard_red_{moment}.png'
    assert shot.is_file() and shot.stat().st_size > 5000, out
  report = json.loads((artifacts / 'demo_lizard_red_report.json').read_text())
  # The takeover is under way: adversary cells after the injection, and still after 60 steps.
  assert report['atInjection']['adversary'] > 0
  assert report['final']['adversary'] > 0
  assert report['grown']['adversary'] == 0 and report['grown']['alive'] > 200


@pytest.mark.slow
def test_tensorboard_page_and_a_labelled_strip(tmp_path, mirror):
  """A tiny training run, its TensorBoard scalars page in Chromium, and its evaluation strip
  (t = N over each frame) as artifacts."""
  _check_chromium()
  artifacts = _artifacts()
  env = dict(os.environ, TF_MULTINCA_MIRROR=str(mirror), TF_CPP_MIN_LOG_LEVEL='3')
  work = tmp_path / 'run'
  p = subprocess.run([sys.executable, '-m', 'tools.train_adversary',
                      '--config=lizard_red_testing', f'--workdir={work}'], cwd=REPO, env=env,
                     capture_output=True, text=True, timeout=300)
  assert p.returncode == 0, p.stderr[-3000:]
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
  tb = subprocess.Popen([sys.executable, '-m', 'tensorboard.main', '--logdir',
                         str(work / 'tensorboard'), '--host', '127.0.0.1', '--port', str(port)],
                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  url = f'http://127.0.0.1:{port}'
  try:
    deadline = time.time() + 60
    while True:
      try:
        tags = json.loads(urllib.request.urlopen(f'{url}/data/plugin/scalars/tags',
                                                 timeout=5).read())
        break
      except OSError:
        assert time.time() < deadline and tb.poll() is None, 'tensorboard did not start'
        time.sleep(0.5)
    [run] = tags  # one run, named after the config
    assert run == 'lizard_red_testing'
    assert {t.split('/')[0] for t in tags[run]} >= {'train', 'takeover', 'weights', 'optim',
                                                    'valid', 'eval'}
    out = _node_test(['test/tensorboard.test.mjs'], tmp_path, 200,
                     TF_MULTINCA_TB_URL=url, TF_MULTINCA_WEB_ARTIFACTS=str(artifacts))
    assert '# fail 0' in out
  finally:
    tb.terminate()
    tb.wait(timeout=30)
  assert (artifacts / 'tensorboard_scalars.png').stat().st_size > 20000
  # The run's evaluation strip, as TensorBoard shows it (eval/strip), with its step labels.
  events = _last_image(work / 'tensorboard' / 'lizard_red_testing', 'eval/strip')
  strip = artifacts / 'eval_strip_lizard_red_testing.png'
  strip.write_bytes(events)
  img = np.asarray(Image.open(strip).convert('RGB'))
  assert img.shape[1] > 300
  # The label band above the frames holds dark text on white.
  assert (img[:12].min(axis=2) < 100).any()


def _last_image(logdir, tag):
  """The encoded PNG of the last image summary `tag` in `logdir`'s event files."""
  acc = event_accumulator.EventAccumulator(str(logdir), size_guidance={'images': 0,
                                                                       'tensors': 0})
  acc.Reload()
  tensor = acc.Tensors(tag)[-1].tensor_proto
  return tensor.string_val[2]  # [width, height, png]
