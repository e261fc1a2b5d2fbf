"""The results zoo's records, the reproduction bar and the report, on small fake entries."""

import dataclasses
import json
import os
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

from tf_multinca import configs, hub, render, report, text, weights_file, zoo
from tf_multinca.model import CAModel
from tf_multinca.training import reproduce

REPO = pathlib.Path(__file__).resolve().parents[1]


def seed_metrics(fractions, alive, mse):
  return zoo.SeedMetrics(original_fraction=tuple(fractions), alive=tuple(alive), mse=tuple(mse))


def evaluation(model, fractions, alive, mse, age=500):
  return zoo.Evaluation(model=model, ages={age: seed_metrics(fractions, alive, mse)},
                        weight_distance=0.05 if model != 'control' else None,
                        cosine_similarity=0.9 if model != 'control' else None)


def test_complete_counts_only_seeds_without_an_original_cell():
  m = seed_metrics([0.0, 0.0001, 0.0, 0.5], [500] * 4, [0.01] * 4)
  assert m.complete() == 2
  assert m.stats('mse') == pytest.approx((0.01, 0.0, 0.01))
  assert m.stats('alive')[0] == 500


@pytest.mark.parametrize('ours_mse, ours_fracs, passed, failing', [
    ([0.003] * 128, [0.0] * 128, True, []),
    # One organism lost (> 5 x the published median 0.003): the allowance of 1 in 128.
    ([0.003] * 127 + [0.05], [0.0] * 128, True, []),
    ([0.003] * 126 + [0.05] * 2, [0.0] * 128, False, ['catastrophic organisms']),
    ([0.0045] * 128, [0.0] * 128, False, ['mean MSE', 'median MSE']),  # > 1.25 x 0.0035, 0.003
    # The median holds (0.003) while a heavy shoulder lifts the mean past 1.25 x 0.0035.
    ([0.003] * 96 + [0.0145] * 32, [0.0] * 128, False, ['mean MSE']),
    # The mean holds while the typical organism is blurrier: median 0.0039 > 1.25 x 0.003.
    ([0.0039] * 65 + [0.0025] * 63, [0.0] * 128, False, ['median MSE']),
    ([0.003] * 128, [0.0] * 124 + [0.1] * 4, False, ['complete takeovers']),  # 124 < 125
])
def test_static_bar(ours_mse, ours_fracs, passed, failing):
  published = evaluation('paper/x', [0.0] * 128, [580] * 128, [0.003] * 96 + [0.005] * 32)
  # mean 0.0035, median 0.003; a lost organism has MSE > 0.015
  v = zoo.verdict('static', evaluation('ours', ours_fracs, [570] * 128, ours_mse), published,
                  500, 128)
  assert v.passed is passed
  assert [c[0] for c in v.checks if not c[3]] == failing
  assert [c[0] for c in v.checks] == ['complete takeovers', 'mean MSE', 'median MSE',
                                      'catastrophic organisms']


def test_the_catastrophic_allowance_is_the_published_count_plus_one_in_128():
  # The published adversary loses 3 organisms of 128 (MSE > 5 x its median): ours may lose 4.
  published = evaluation('paper/x', [0.0] * 128, [580] * 128, [0.002] * 125 + [0.2] * 3)
  assert zoo.catastrophic(published.at(500), published.at(500)) == 3
  four = evaluation('ours', [0.0] * 128, [580] * 128, [0.002] * 124 + [0.011] * 4)
  five = evaluation('ours', [0.0] * 128, [580] * 128, [0.002] * 123 + [0.011] * 5)
  assert zoo.verdict('static', four, published, 500, 128).checks[-1] == (
      'catastrophic organisms', 4, 4, True)
  assert zoo.verdict('static', five, published, 500, 128).checks[-1][3] is False
  # A diverged organism (NaN) is lost too.
  nan = evaluation('ours', [0.0] * 128, [580] * 128, [0.002] * 127 + [float('nan')])
  assert zoo.catastrophic(nan.at(500), published.at(500)) == 1


def test_bar_follows_a_published_adversary_that_falls_short():
  # The published adversary completes 26 of 32 (the 97 % share asks 32): 26 are enough for
  # ours, 25 are not.
  published = evaluation('paper/x', [0.0] * 26 + [0.2] * 6, [500] * 32, [0.01] * 32)
  ok = evaluation('ours', [0.0] * 26 + [0.3] * 6, [500] * 32, [0.01] * 32)
  short = evaluation('ours', [0.0] * 25 + [0.3] * 7, [500] * 32, [0.01] * 32)
  assert zoo.verdict('static', ok, published, 500, 32).passed
  v = zoo.verdict('static', short, published, 500, 32)
  assert not v.passed and v.checks[0] == ('complete takeovers', 25, 26, False)


def test_dynamic_bar_checks_alive_cells_within_20_percent():
  published = evaluation('paper/x', [0.0] * 32, [600] * 32, [0.004] * 32)
  near = evaluation('ours', [0.0] * 32, [700] * 32, [0.004] * 32)
  far = evaluation('ours', [0.0] * 32, [900] * 32, [0.004] * 32)
  assert zoo.verdict('dynamic', near, published, 500, 32).passed
  v = zoo.verdict('dynamic', far, published, 500, 32)
  assert [c[0] for c in v.checks if not c[3]] == ['alive cells vs published']


@pytest.mark.parametrize('control_alive, passed', [
    (0, True),  # vanished (the growing butterfly)
    (1900, True),  # exploded (the growing lizard, the firework)
    (650, False),  # kept its shape alone: the adversary proves nothing
])
def test_dynamic_bar_needs_a_control_that_lost_the_shape(control_alive, passed):
  published = evaluation('paper/x', [0.0] * 32, [600] * 32, [0.004] * 32)
  ours = evaluation('ours', [0.0] * 32, [610] * 32, [0.004] * 32)
  control = evaluation('control', [1.0] * 32, [control_alive] * 32, [0.2] * 32)
  v = zoo.verdict('dynamic', ours, published, 500, 32, control=control)
  assert v.passed is passed
  assert v.checks[-1] == (zoo.CONTROL_CHECK, control_alive, 600, passed)
  # A static experiment's control keeps its shape by design: not checked.
  assert zoo.CONTROL_CHECK not in [c[0] for c in zoo.verdict('static', ours, published, 500, 32,
                                                              control=control).checks]


def fake_assessment(kind, rng, seeds=128, ours_factor=1.0):
  """A made-up held-out test set assessment: ours (MSE x `ours_factor`), published, control."""
  mse = rng.uniform(0.002, 0.004, seeds)
  ours = zoo.Evaluation('ours', {500: seed_metrics([0.0] * seeds, [575] * seeds,
                                                   mse * ours_factor)}, 0, 0.04, 0.97)
  published = zoo.Evaluation('paper/x', {500: seed_metrics([0.0] * seeds, [590] * seeds, mse)},
                             0, 0.06, 0.95)
  control = zoo.Evaluation('control', {500: seed_metrics([1.0] * seeds, [0] * seeds,
                                                         [0.1] * seeds)})
  protocol = zoo.Protocol(seeds=seeds, seed=zoo.TEST_SEED, inject_at=60, ages=(500,), grid=48)
  return zoo.Assessment(protocol, ours, published, control,
                        zoo.verdict(kind, ours, published, 500, seeds, control=control))


def fake_entry(root, name, kind='static', seed=0, strips=True, test=True, ours_factor=1.0):
  """A zoo entry made from scratch: random weights, made-up evaluations (32 development seeds,
  and with `test` 128 test organisms, ours at `ours_factor` x the published MSE there), tiny
  strips."""
  rng = np.random.default_rng(seed)
  d = root / name
  ca = CAModel(convention='paper', init_seed=seed)
  weights_file.save(ca, d / zoo.WEIGHTS_FILE)
  config = configs.get_config('lizard_red').to_dict()
  mse = rng.uniform(0.002, 0.004, 32)
  ours = zoo.Evaluation('ours', {100: seed_metrics([0.5] * 32, [400] * 32, mse + 0.05),
                                 500: seed_metrics([0.0] * 32, [571] * 32, mse)}, 0, 0.04, 0.97)
  published = zoo.Evaluation(config['compare_with'], {
      100: seed_metrics([0.3] * 32, [420] * 32, mse + 0.04),
      500: seed_metrics([0.0] * 32, [587] * 32, mse + 0.0005)}, 0, 0.06, 0.95)
  control = zoo.Evaluation('control', {100: seed_metrics([1.0] * 32, [560] * 32, [0.1] * 32),
                                       500: seed_metrics([1.0] * 32, [560] * 32, [0.1] * 32)})
  record = zoo.RunRecord(
      experiment=name, config_name='lizard_red', config=json.loads(json.dumps(config)),
      kind=kind, commits=('0123456789abcdef',),
      training=zoo.Training(steps=3500, wall_s=2712.0, s_per_step=2712.0 / 3500, best_step=3250,
                            machine='2 cores, test'),
      protocol=zoo.Protocol(seeds=32, seed=1234, inject_at=60, ages=(100, 500), grid=48,
                            strip_steps=(0, 60, 560)),
      ours=ours, published=published, control=control,
      verdict=zoo.verdict(kind, ours, published, 500, 32, control=control),
      test=fake_assessment(kind, rng, ours_factor=ours_factor) if test else None)
  zoo.write_record(d, record)
  if strips:
    for key in zoo.STRIPS:
      states = rng.uniform(0, 1, [3, 48, 48, 17]).astype(np.float32)
      render.save_png(render.evolution_strip(states, 'paper', 1, steps=[0, 60, 560]),
                      d / zoo.STRIPS[key])
  return record


def test_record_round_trips_through_run_json(tmp_path):
  record = fake_entry(tmp_path, 'lizard_red')
  back = zoo.read_record('results/lizard_red', root=tmp_path)
  assert back == record
  assert zoo.names(tmp_path) == ['lizard_red']
  assert back.verdict.passed  # ours 0.003 vs published 0.0035
  assert back.ours.at(500).complete() == 32


def test_results_name_loads_the_adversary_and_its_pairing(tmp_path, monkeypatch):
  fake_entry(tmp_path, 'lizard_red', seed=3)
  monkeypatch.setenv(zoo.RESULTS_ENV, str(tmp_path))
  expected = CAModel(convention='paper', init_seed=3).get_rule_weights()
  for got in (hub.load('results/lizard_red'), zoo.load('results/lizard_red'),
              hub.load(tmp_path / 'lizard_red')):  # the entry's directory works as a name too
    assert got.convention.name == 'paper'
    for k, v in expected.items():
      np.testing.assert_array_equal(got.get_rule_weights()[k], v)
  pair = hub.load_pairing('results/lizard_red')
  assert pair.injection == {'kind': 'square', 'side': 2}
  assert pair.original_name == 'paper/lizard/persist'
  assert pair.target == 'paper/images/lizard_red' and pair.target_array.shape == (48, 48, 4)
  with pytest.raises(zoo.ZooError, match='entries: results/lizard_red'):
    hub.load('results/lizard_blue')


def test_bad_run_json_is_one_clear_error(tmp_path):
  fake_entry(tmp_path, 'x')
  (tmp_path / 'x' / 'run.json').write_text('{"experiment": "x"}')
  with pytest.raises(zoo.ZooError, match='not a results run.json'):
    zoo.read_record(tmp_path / 'x')
  (tmp_path / 'x' / 'run.json').write_text('{not json')
  with pytest.raises(zoo.ZooError, match='not valid JSON'):
    zoo.read_record(tmp_path / 'x')


def test_weights_h5_without_its_convention_asks_for_one(tmp_path):
  ca = CAModel(convention='distill', init_seed=1)
  path = weights_file.save(ca, tmp_path / 'm.weights.h5')
  assert hub.load(path).convention.name == 'distill'  # the sidecar says so
  os.remove(weights_file.sidecar_path(path))
  with pytest.raises(weights_file.WeightsFileError, match='pass one explicitly'):
    hub.load(path)
  assert hub.load(path, 'paper').convention.name == 'paper'


def test_report_from_a_fake_zoo(tmp_path):
  fake_entry(tmp_path, 'lizard_red', seed=1)
  fake_entry(tmp_path, 'lizard_grow_to_persist', kind='dynamic', seed=2)
  fake_entry(tmp_path, 'lizard_no_tail', seed=4, ours_factor=1.4)  # fails on the test set
  path = report.write_report(tmp_path)
  text = path.read_text()
  r = zoo.read_record(tmp_path / 'lizard_red')
  # The headline tables are the test set's: 128 organisms, mean ± std, median, worst, the
  # catastrophic count and the ratio's bootstrap interval.
  m, p = r.test.ours.at(500), r.test.published.at(500)
  mean, std, worst = m.stats('mse')
  ratio, lo, hi = report.ratio_interval(m.mse, p.mse)
  assert (f'| **ours** `results/lizard_red` | 128/128 | 575 ± 0 | {mean:.4f} ± {std:.4f} | '
          f'{m.median("mse"):.4f} | {worst:.4f} | 0 | {ratio:.2f} [{lo:.2f}, {hi:.2f}] | 3500 | '
          '0:45:12 (0.77 s/step) |') in text
  assert ratio == pytest.approx(1.0) and lo <= 1.0 <= hi
  assert '| lizard_red | 128 (test set) | **passes** |' in text
  assert '| lizard_no_tail | 128 (test set) | **fails** |' in text
  assert 'held-out test set' in text.lower() and f'generator seed {zoo.TEST_SEED}' in text
  # The development seeds stay beside it, with their own verdict.
  dev = r.ours.at(500).stats('mse')[0]
  assert f'| lizard_red | {dev:.4f} / ' in text
  assert '## Static experiments' in text and '## Dynamic experiments' in text
  assert 'orig. fraction t+500' in text  # the dynamic table's ages (the test set's)
  for name in ('lizard_red', 'lizard_grow_to_persist'):
    assert f'![{name}](figures/{name}.png)' in text
    assert (tmp_path / 'figures' / f'{name}.png').is_file()
  # The per-organism distribution, as PNG and SVG, embedded.
  for ext in ('png', 'svg'):
    assert (tmp_path / 'figures' / f'distribution.{ext}').stat().st_size > 1000
  assert '![MSE per organism](figures/distribution.png)' in text
  # The dynamic figure stacks control, ours and published; the static one ours and published.
  from PIL import Image
  h_static = Image.open(tmp_path / 'figures' / 'lizard_red.png').size[1]
  h_dynamic = Image.open(tmp_path / 'figures' / 'lizard_grow_to_persist.png').size[1]
  assert h_dynamic > 1.4 * h_static
  # Rebuilt from the same entries, the report and its figures are the same bytes.
  before = {f: f.read_bytes() for f in (tmp_path / 'figures').iterdir()}
  report.write_report(tmp_path)
  assert path.read_text() == text
  assert {f: f.read_bytes() for f in (tmp_path / 'figures').iterdir()} == before


def test_an_entry_not_yet_on_the_test_set_says_so(tmp_path):
  fake_entry(tmp_path, 'lizard_red', seed=1, test=False)
  text = report.write_report(tmp_path).read_text()
  assert '| lizard_red | 32 (development seeds: not on the test set yet) |' in text


def test_the_ratio_interval_is_a_paired_bootstrap():
  rng = np.random.default_rng(5)
  published = rng.uniform(0.002, 0.006, 128)
  ratio, lo, hi = report.ratio_interval(1.2 * published, published)
  assert ratio == pytest.approx(1.2) and lo == pytest.approx(1.2) and hi == pytest.approx(1.2)
  noisy = published * rng.uniform(0.5, 1.9, 128)  # mean ratio 1.2, spread per organism
  ratio, lo, hi = report.ratio_interval(noisy, published)
  assert lo < ratio < hi and hi - lo < 0.3
  # More organisms, a narrower interval.
  assert report.ratio_interval(noisy[:16], published[:16])[2] - report.ratio_interval(
      noisy[:16], published[:16])[1] > hi - lo
  assert all(np.isnan(report.ratio_interval([], [])))


@pytest.mark.slow
def test_report_only_binary_rebuilds_offline(tmp_path):
  fake_entry(tmp_path, 'lizard_red')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3', TF_MULTINCA_MIRROR=str(tmp_path / 'none'))
  p = subprocess.run([sys.executable, '-m', 'tools.reproduce', '--report_only',
                      f'--results_dir={tmp_path}', f'--workdir={tmp_path / "runs"}'], cwd=REPO,
                     env=env, capture_output=True, text=True, timeout=120)
  assert p.returncode == 0, p.stderr
  assert (tmp_path / 'REPORT.md').is_file() and not (tmp_path / 'runs').exists()
  bad = subprocess.run([sys.executable, '-m', 'tools.reproduce', '--experiments=lizard_pink',
                        '--report_only'], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=120)
  assert bad.returncode != 0 and 'lizard_pink' not in bad.stdout
  assert '--experiments must name' in bad.stderr


def fake_cell(root, regime, rate, distance, cosine, final_loss=0.0093, stopped_early=True,
              met_stop_rule=None):
  """A fig. 15 cell's entry with made-up numbers (`met_stop_rule`: as `stopped_early` unless
  given)."""
  config = configs.get_config(regime, [f'injection=spray:{rate:g}']).to_dict()
  name = f'perturbation/{regime}/spray_{rate * 100:g}pct'
  if met_stop_rule is None:
    met_stop_rule = stopped_early
  ev = zoo.Evaluation('ours', {500: seed_metrics([0.0] * 32, [570] * 32, [0.004] * 32)}, 0,
                      distance, cosine)
  record = zoo.RunRecord(
      experiment=name, config_name=regime, config=json.loads(json.dumps(config)),
      kind='perturbation', commits=('0123456789ab',),
      training=zoo.Training(steps=800, wall_s=600.0, s_per_step=0.75, best_step=None,
                            machine='test', final_loss=final_loss,
                            stopped_early=stopped_early, met_stop_rule=met_stop_rule),
      protocol=zoo.Protocol(seeds=32, seed=1234, inject_at=60, ages=(500,), grid=48),
      ours=ev, published=None, control=None,
      verdict=zoo.verdict('perturbation', ev, None, 500, 32),
      overrides=(f'injection=spray:{rate:g}',))
  weights_file.save(CAModel(convention='paper'), root / name / zoo.WEIGHTS_FILE)
  zoo.write_record(root / name, record)
  return record


def test_report_writes_the_perturbation_table_and_figure(tmp_path):
  fake_cell(tmp_path, 'perturbation_copy_l3', 0.8, 0.051, 0.96)
  fake_cell(tmp_path, 'perturbation_copy_l3', 0.05, 0.12, 0.81)
  fake_cell(tmp_path, 'perturbation_random', 0.8, 0.2, 0.01)
  text = report.write_report(tmp_path).read_text()
  assert '## Adversaries close to the original (fig. 15)' in text
  assert '| perturbation_copy_l3 | 80 % | 800 | yes | 0.0093 | 0.051 (0.05) | 0.960 (0.96)' in text
  # The settings that tell the regimes apart, read from the cells' configs.
  assert ("| perturbation_copy_l3 | 80 %, 5 % | copy | 0.01 | norm | 0.01 | 2500 | [1000, 1500] |"
          " 0.01 | 32 | 32 | 0.0 |") in text
  assert ("| perturbation_random | 80 % | random | 0.0 | rms | 0.001 | 2500 | [1000, 1500] |"
          " 0.01 | 64 | 96 | 0.998 |") in text
  import csv
  rows = list(csv.DictReader((tmp_path / 'perturbation' / 'table.csv').open()))
  assert [(r['regime'], float(r['rate'])) for r in rows] == [
      ('perturbation_copy_l3', 0.8), ('perturbation_copy_l3', 0.05), ('perturbation_random', 0.8)]
  assert float(rows[1]['weight_distance']) == 0.12 and rows[0]['complete'] == '32'
  from PIL import Image
  assert Image.open(tmp_path / 'figures' / 'perturbation.png').size[0] > 600
  # A vector copy, with labelled axes and a legend naming ours and the paper's per regime.
  svg = (tmp_path / 'figures' / 'perturbation.svg').read_text()
  for label in ('adversaries injected (spray)', 'cosine similarity',
                'perturbation_copy_l3 (ours)', 'perturbation_copy_l3 (paper)',
                'perturbation_random (ours)'):
    assert label in svg, label
  assert '![fig. 15](figures/perturbation.png)' in text
  # A cell's record names its config with the spray-rate override: it is current.
  r = zoo.read_record(tmp_path / 'perturbation' / 'perturbation_random' / 'spray_80pct')
  assert not reproduce.config_diff(r.config, configs.get_config(r.config_name, r.overrides))


def test_the_table_reads_whether_a_cell_met_the_loss_criterion_from_its_record(tmp_path):
  # The training loop judges the criterion (metrics.json met_stop_rule, tested in
  # test_training_e2e); the table shows what the record says, through a write and a read.
  fake_cell(tmp_path, 'perturbation_copy', 0.05, 0.1, 0.85, final_loss=0.0095,
            stopped_early=False, met_stop_rule=True)  # met at the step cap
  fake_cell(tmp_path, 'perturbation_copy', 0.25, 0.1, 0.85, final_loss=0.0105,
            stopped_early=False)
  records = [zoo.read_record(tmp_path / 'perturbation' / 'perturbation_copy' / f'spray_{p}pct')
             for p in (5, 25)]
  rows = {x['rate']: x['reached_loss_criterion'] for x in report.perturbation_rows(records)}
  assert rows == {0.05: True, 0.25: False}
  text = report.write_report(tmp_path).read_text()
  assert '| perturbation_copy | 5 % | 800 | yes |' in text
  assert '| perturbation_copy | 25 % | 800 | no (step cap) |' in text


def test_durations_read_as_hours_minutes_seconds():
  assert text.hms(3725.4) == '1:02:05' and text.hms(59.6) == '0:01:00'
  assert text.hms(None) == '-' and text.hms(float('inf')) == '?' and text.hms(float('nan')) == '?'


def _paper_rows():
  return [{'regime': regime, 'rate': rate, 'weight_distance': d, 'cosine_similarity': c}
          for regime, cells in report.PAPER_FIG15.items() for rate, (d, c, _) in cells.items()]


def test_the_fig15_claims_hold_on_the_papers_own_table():
  claims = report.perturbation_claims(_paper_rows())
  assert len(claims) == 5 and all(c.holds for c in claims), [c for c in claims if not c.holds]


def test_a_claim_we_do_not_reproduce_is_shown_with_what_was_measured(monkeypatch):
  text = 'perturbation_random_l3: |dw| grows as the injected share falls'
  monkeypatch.setitem(report.NOT_REPRODUCED, text, 'Not reproduced: the 25 % cell dips')
  rows = _paper_rows()
  for r in rows:  # the random-init 25 % cell dips below the 50 % one
    if r['regime'] == 'perturbation_random_l3' and r['rate'] == 0.25:
      r['weight_distance'] = 0.03
  claims = {c.text: c for c in report.perturbation_claims(rows)}
  assert claims[text].contradicted
  line = report.claim_line(claims[text])
  assert line.startswith(f'- **contradicted**: {text} (80 % 0.044, 50 % 0.040, 25 % 0.030')
  assert line.endswith(f'. {report.NOT_REPRODUCED[text]}.')
  # On the paper's own table the same claim holds, and its line has no such note.
  held = {c.text: c for c in report.perturbation_claims(_paper_rows())}[text]
  assert held.holds and report.claim_line(held) == f'- holds: {text} ({held.detail})'


def test_a_fig15_claim_that_fails_or_lacks_cells_says_why():
  rows = _paper_rows()
  for r in rows:  # the penalty no longer helps the copied init at 25 %
    if r['regime'] == 'perturbation_copy_l3' and r['rate'] == 0.25:
      r['weight_distance'] = 0.5
  claims = {c.text: c for c in report.perturbation_claims(rows)}
  copy = claims['copy init: the penalty gives a smaller |dw| and a larger cosine at every rate']
  assert not copy.holds and copy.detail.startswith('25 %: |dw| 0.500 vs 0.130')
  assert copy.contradicted
  grows = claims['perturbation_copy_l3: |dw| grows as the injected share falls']
  assert not grows.holds and grows.contradicted  # 0.5 at 25 % is above 5 %'s 0.13
  assert claims['random init: the penalty gives a smaller |dw| and a larger cosine at every '
                'rate'].holds
  partial = [r for r in _paper_rows() if r['rate'] != 0.05 or r['regime'] != 'perturbation_random']
  far = report.perturbation_claims(partial)[-1]
  assert not far.holds and not far.contradicted  # a missing cell is not a claim shown
  # Only the 80 % cells: nothing holds yet, nothing is contradicted.
  top = [r for r in _paper_rows() if r['rate'] == 0.8]
  assert not any(c.holds or c.contradicted for c in report.perturbation_claims(top)[:4])
  far = dict(top[-1], cosine_similarity=0.5)  # perturbation_random at 80 %, now close
  assert report.perturbation_claims(top[:-1] + [far])[-1].contradicted


def test_fig15_settings_show_which_cells_trained_with_each_setting():
  # A regime retrained cell by cell with a new recipe shows both recipes, each with its cells.
  def record(rate, rollout_max):
    config = configs.get_config('perturbation_copy', [f'injection=spray:{rate:g}',
                                                      'rollout_min=32',
                                                      f'rollout_max={rollout_max}'])
    return types.SimpleNamespace(config_name='perturbation_copy',
                                 config=dataclasses.asdict(config))

  lines = report._perturbation_settings([record(0.8, 96), record(0.5, 32), record(0.05, 32)])
  rows = [x for x in lines if x.startswith('| perturbation_copy |')]
  assert len(rows) == 2, lines
  header = [c.strip() for c in lines[3].split('|')[1:-1]]
  cells = {r.split('|')[2].strip(): [c.strip() for c in r.split('|')[1:-1]] for r in rows}
  assert set(cells) == {'80 %', '50 %, 5 %'}
  at = header.index('rollout_max')
  assert cells['80 %'][at] == '96' and cells['50 %, 5 %'][at] == '32'
