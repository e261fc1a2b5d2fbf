"""tools.takeover end to end, its errors, and the rendering helpers."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from test_model import random_weights
from tf_multinca import CAModel, hub, pretrained, registry, render, takeover, weights_file
from tf_multinca import metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_tool(*args, env_extra=None):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', **(env_extra or {}))
  return subprocess.run([sys.executable, '-m', 'tools.takeover', *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_tool_writes_every_output(tmp_path):
  out = tmp_path / 'run'
  p = run_tool('--pairing=lizard_red', f'--workdir={out}', '--seeds=2', '--steps_after=40',
               '--gif_every=10')
  assert p.returncode == 0, p.stderr
  doc = json.loads((out / 'lizard_red_metrics.json').read_text())
  assert doc['seeds'] == 2 and doc['injection_step'] == 60
  assert doc['info']['injection'] == {'kind': 'square', 'side': 2}
  assert len(doc['per_step']['original_fraction']['mean']) == 101
  # Right after injection, 4 cells of ~500 are adversaries.
  f61 = doc['per_step']['original_fraction']['per_seed'][0][61]
  assert 0.95 < f61 < 1.0
  rows = (out / 'lizard_red_metrics.csv').read_text().splitlines()
  assert rows[0].startswith('step,original_fraction_mean') and len(rows) == 102
  strip = Image.open(out / 'lizard_red_strip.png')
  assert strip.size[1] > 2 * 48 * 4 - 10  # organism row and cell-mask row
  gif = Image.open(out / 'lizard_red.gif')
  assert gif.n_frames == 11
  events = list((out / 'tensorboard').glob('events.out.tfevents.*'))
  assert events, 'no TensorBoard event file'
  from tensorboard.backend.event_processing import event_accumulator
  acc = event_accumulator.EventAccumulator(str(out / 'tensorboard'),
                                           size_guidance={'tensors': 0})
  acc.Reload()
  tags = acc.Tags()['tensors']
  assert 'lizard_red/original_fraction' in tags and 'lizard_red/strip' in tags
  assert len(acc.Tensors('lizard_red/alive')) == 101


@pytest.mark.slow
def test_fixed_mode_and_control(tmp_path):
  p = run_tool('--pairing=lizard_red', f'--workdir={tmp_path}', '--seeds=2', '--steps_after=20',
               '--mode=fixed', '--injection=spray:0.5')
  assert p.returncode == 0, p.stderr
  doc = json.loads((tmp_path / 'lizard_red_metrics.json').read_text())
  # Half the cells are adversaries at injection; the fixed mask cannot spread into the rest.
  f = np.array(doc['per_step']['original_fraction']['mean'])
  assert 0.4 < f[61] < 0.6
  assert 0.1 < f[-1] < 0.9
  p = run_tool('--pairing=lizard_red', '--control', f'--workdir={tmp_path}', '--seeds=1',
               '--steps_after=10')
  assert p.returncode == 0, p.stderr
  doc = json.loads((tmp_path / 'lizard_red_control_metrics.json').read_text())
  assert set(doc['per_step']['original_fraction']['mean']) == {1.0}


@pytest.mark.slow
@pytest.mark.parametrize('args,message', [
    (['--pairing=lizard_pink'], 'unknown pairing'),
    (['--original=paper/lizard/persist', '--adversary=distill/ex2_lizard',
      '--injection=square:2'], 'convention'),
    (['--pairing=lizard_red', '--injection=square:30'], 'does not fit'),
    (['--pairing=lizard_red', '--injection=circle:3'], '--injection must be'),
    (['--original=/nonexistent/model.pt'], 'nonexistent'),
])
def test_tool_errors(tmp_path, args, message):
  out = tmp_path / 'bad'
  p = run_tool(*args, f'--workdir={out}', '--seeds=1', '--steps_after=1')
  assert p.returncode != 0
  assert message in p.stderr, p.stderr
  assert not (out / 'takeover_metrics.json').exists()


def test_run_takeover_argument_errors():
  a = CAModel(convention='paper')
  with pytest.raises(takeover.TakeoverError, match='needs an injection'):
    takeover.run_takeover(a, CAModel(convention='paper'), None)
  with pytest.raises(takeover.TakeoverError, match='mode'):
    takeover.run_takeover(a, mode='sparse')


def test_render_conventions():
  rgba = np.array([[[0.2, 0.4, 0.6, 0.5]]], np.float32)
  np.testing.assert_allclose(render.rgba_to_rgb(rgba, 'distill'), [[[0.7, 0.9, 1.0]]])
  np.testing.assert_allclose(render.rgba_to_rgb(rgba, 'paper'), [[[0.6, 0.7, 0.8]]])
  x = np.zeros((2, 2, 17), np.float32)
  x[0, 0, 15] = 1.0
  x[0, 1, 16] = 0.5
  x[1, 1, 15] = 0.05
  m = render.cell_mask_rgb(x)
  np.testing.assert_allclose(m[0, 0], render.ORIGINAL_COLOUR)
  np.testing.assert_allclose(m[0, 1], render.ADVERSARY_COLOUR)
  np.testing.assert_allclose(m[1, 1], [1, 1, 1])


def test_png_gif_tile_zoom(tmp_path):
  imgs = np.random.default_rng(0).uniform(0, 1, (5, 3, 4, 3)).astype(np.float32)
  t = render.tile(render.zoom(imgs, 2), cols=3, pad=1)
  assert t.shape == (2 * 6 + 1, 3 * 8 + 2, 3)
  png = render.save_png(t, tmp_path / 'a' / 't.png')
  back = np.asarray(Image.open(png))
  np.testing.assert_array_equal(back, render.to_uint8(t))
  gif = render.save_gif(list(render.zoom(imgs, 2)), tmp_path / 'g.gif')
  assert Image.open(gif).n_frames == 5
  assert not [p for p in os.listdir(tmp_path) if p.startswith('.')]


def test_strip_has_mask_row_for_multi_states():
  states = np.zeros((3, 8, 8, 17), np.float32)
  # Organisms, their cell masks, and the masks' colour key under them (20 rows).
  assert render.evolution_strip(states, 'paper', zoom_factor=2, pad=0).shape == (32 + 20, 48, 3)
  single = render.evolution_strip(states[..., :16], 'paper', zoom_factor=2, pad=0)
  assert single.shape == (16, 48, 3)  # no mask, no key


def test_strip_marks_the_injection_and_keys_the_mask_colours():
  states = np.zeros((3, 16, 16, 17), np.float32)
  plain = render.evolution_strip(states, 'paper', zoom_factor=8, steps=[0, 60, 100])
  marked = render.evolution_strip(states, 'paper', zoom_factor=8, steps=[0, 60, 100],
                                  marks={60: 'injected'})
  assert marked.shape[0] == plain.shape[0] + 16  # a second label line
  red = (marked[..., 0] > 0.6) & (marked[..., 1] < 0.4) & (marked[..., 2] < 0.4)
  cols = np.nonzero(red[:34].any(0))[0]  # the mark is red text over frame 1 only
  assert cols.size and cols.min() > 128 + 2 and cols.max() < 2 * 128 + 2
  key = marked[-20:]  # orange and blue squares in the key band
  for colour in (render.ORIGINAL_COLOUR, render.ADVERSARY_COLOUR):
    assert (np.abs(key - colour).max(-1) < 0.02).sum() >= 100, colour
  three = render.evolution_strip(np.zeros((2, 16, 16, 18), np.float32), 'paper', zoom_factor=8,
                                 names=['original', 'red', 'blue'])
  assert (np.abs(three[-20:] - render.EXTRA_COLOURS[0]).max(-1) < 0.02).sum() >= 100


def test_takeover_accepts_a_locally_registered_model(tmp_path, monkeypatch):
  ca = pretrained.load('paper/lizard/persist')
  weights = weights_file.save(ca, tmp_path / 'mine.weights.h5')
  manifest = tmp_path / 'local.json'
  registry.register('local/my_lizard', weights, convention='paper', role='persistent',
                    organism='lizard', target='paper/images/lizard', manifest=manifest)
  monkeypatch.setenv('TF_MULTINCA_LOCAL_MANIFEST', str(manifest))
  r = hub.load_pairing(original='local/my_lizard',
                       adversary='paper/lizard/virus/lizard_persist_to_red_squareside_2',
                       injection='square:2')
  # The MSE's target is the adversary's, not the original's image.
  assert r.target == 'paper/images/lizard_red' and r.target_array.shape == (48, 48, 4)
  for name, value in ca.get_rule_weights().items():
    np.testing.assert_array_equal(r.original.get_rule_weights()[name], value)
  res = takeover.run_takeover(r.original, r.adversary, r.injection, r.target_array,
                              steps_before=60, steps_after=5, seeds=1)
  assert res.metrics['original_fraction'][-1][0] < 1.0


def test_unfittable_square_refused_or_counted():
  ca = pretrained.load('paper/lizard/persist')
  args = dict(original=ca, adversary=ca, injection='square:20', steps_before=20, steps_after=2,
              seeds=2, size=32)
  with pytest.raises(takeover.TakeoverError, match='does not fit'):
    takeover.run_takeover(**args)
  res = takeover.run_takeover(**args, lenient=True)
  assert res.info['no_injection'] == 2
  assert res.states.shape[2:4] == (32, 32)
  np.testing.assert_array_equal(res.metrics['original_fraction'][-1], [1.0, 1.0])
  fits = takeover.run_takeover(**dict(args, injection='square:2'), lenient=True)
  assert fits.info['no_injection'] == 0
  assert (fits.states[-1][..., 16] > 0.1).any()  # the adversary got its cells


def test_report_of_a_short_rollout_has_no_missing_step(tmp_path):
  rows = takeover.report(tmp_path, ['lizard_red'], seeds=1, steps_after=30, log=lambda m: None)
  assert set(rows['lizard_red']) == {90} and set(rows['lizard_red_control']) == {90}
  text = (tmp_path / 'report.md').read_text()
  assert 'alive t=90' in text and '| lizard_red |' in text


@pytest.mark.parametrize('bad', ['checkerboard:0', {'kind': 'checkerboard', 'period': 0},
                                 'square:0', 'spray:1.5'])
def test_degenerate_injections_are_refused(bad):
  with pytest.raises(takeover.inj.InjectionError):
    takeover.inj.parse_injection(bad)


def test_a_one_rule_multi_state_renders_with_its_own_alpha():
  # k = 1: 16 channels, alpha at channel 15 (not 3, where a single state has it).
  x = np.zeros((4, 4, 16), np.float32)
  x[1, 1, 15] = 1.0  # alive in the multi layout, RGB 0: black on white
  single = render.state_to_rgb(x, 'paper')  # guessed as single: alpha channel 3 = 0 -> white
  multi = render.state_to_rgb(x, 'paper', multi=True)
  np.testing.assert_array_equal(single[1, 1], [1.0, 1.0, 1.0])
  np.testing.assert_array_equal(multi[1, 1], [0.0, 0.0, 0.0])
  strip = render.evolution_strip(x[None], 'paper', zoom_factor=1, pad=0, multi=True)
  assert strip.shape == (8 + 20, 4, 3)  # the cell mask row is there too (and its key)
  assert float(metrics.alive_cells(x[None])[0]) == 1.0


def test_repeated_takeovers_reuse_the_traced_step_and_draw_the_same():
  ca = CAModel(convention='paper').set_rule_weights(random_weights(1))
  adv = CAModel(convention='paper').set_rule_weights(random_weights(2))
  args = dict(injection='spray:0.5', steps_before=8, steps_after=6, seeds=2, size=16)
  first = takeover.run_takeover(ca, adv, seed=5, **args)
  step = takeover._stepper(ca, adv, 'multi', None).step
  again = takeover.run_takeover(ca, adv, seed=5, **args)
  assert takeover._stepper(ca, adv, 'multi', None).step is step  # cached, not retraced
  np.testing.assert_array_equal(first.states, again.states)
  other = takeover.run_takeover(ca, adv, seed=6, **args)
  assert np.abs(other.states - first.states).max() > 0
