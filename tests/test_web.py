"""The TF.js export in Node and the demo page in headless Chromium (tools/web).

Runs the `node --test` suites of tools/web on the lizard_red export of tests/test_export.py:
the converted step equals the Python SavedModel within 1e-5, the rollout graph stays finite and
alive, and the demo page, driven in a real headless Chromium, grows the organism, injects
adversaries and shows the takeover. Needs Node >= 18, `npm ci` in tools/web and Chromium
(`.ci/install_web.sh` installs them); when one is missing the tests fail, saying so.

The screenshots (after the growth, the injection and the takeover) and the page's report go to
$TF_MULTINCA_ARTIFACTS/web (default runs/test_artifacts/web).
"""

import json
import os
import pathlib
import shutil
import subprocess

import pytest

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
