r"""Grow a published organism, inject adversaries and follow the takeover.

    python -m tools.takeover --pairing=lizard_red --workdir=runs/takeover/lizard_red
    python -m tools.takeover --original=paper/lizard/persist \
        --adversary=paper/lizard/virus/lizard_persist_to_red_squareside_2 \
        --injection=spray:0.1 --seeds=8 --workdir=runs/takeover/custom
    python -m tools.takeover --pairing=lizard_red --control --workdir=runs/takeover/control
    python -m tools.takeover --pairing=results/lizard_red --workdir=runs/takeover/ours
    python -m tools.takeover --pairing=lizard_red --damage=300:disc:8 --workdir=runs/healing
    python -m tools.takeover --race=lizard_red --race=lizard_blue --workdir=runs/race

Writes `<name>_metrics.json` / `.csv` (original-cell fraction, alive cells and MSE per step, mean
and std over seeds), `<name>_strip.png`, `<name>.gif` and TensorBoard logs under `--workdir`.
A race (`--race`, k >= 3 rules on one grid) writes `race_metrics.json` (each rule's wins, the
coexistence and the mean shares per step) and `race_strip.png` instead. The work is in
`tf_multinca.takeover` and `tf_multinca.race`.
"""

from absl import app
from absl import flags

from tf_multinca import binary
from tf_multinca import damage
from tf_multinca import race
from tf_multinca import hub
from tf_multinca import injection
from tf_multinca import takeover

FLAGS = flags.FLAGS
flags.DEFINE_string('pairing', None, 'short name (' + ', '.join(sorted(hub.PAIRINGS)) +
                    '), a published adversary name, one of ours (results/<experiment>) or a '
                    'training workdir: each brings its original, injection and target')
flags.DEFINE_string('original', None, 'original organism: a model name (published, '
                    'results/..., registered) or a weight file')
flags.DEFINE_string('adversary', None, 'adversary: a model name or a weight file')
flags.DEFINE_string('injection', None, 'square:S | spray:P (0..1 or P%) | checkerboard; '
                    'default the pairing\'s own')
flags.DEFINE_string('target', None, 'the MSE\'s target: manifest name, PNG path or emoji; '
                    'default the adversary\'s recorded one (none: no MSE)')
flags.DEFINE_enum('convention', None, ['paper', 'distill'], 'load every model in this convention')
flags.DEFINE_bool('control', False, 'run the organism alone, without adversaries')
flags.DEFINE_multi_string('race', [], 'a race: two or more adversaries on one organism, each '
                          'NAME or NAME@INJECTION (default the pairing\'s own), e.g. '
                          '--race=lizard_red --race=lizard_blue; repeatable')
flags.DEFINE_multi_string('damage', [], 'STEP:disc:R (a disc of radius R cells around a random '
                          'living cell, erased after step STEP) or STEP:half:ANGLE (the half '
                          'beyond the organism\'s centre in direction ANGLE degrees); '
                          'repeatable')
flags.DEFINE_integer('steps_before', 60, 'steps grown from the seed before injection', lower_bound=0)
flags.DEFINE_integer('steps_after', 500, 'steps after injection', lower_bound=0)
flags.DEFINE_integer('seeds', 8, 'samples, batched', lower_bound=1)
flags.DEFINE_integer('seed', 0, 'random seed')
flags.DEFINE_enum('mode', 'multi', ['multi', 'fixed'], 'multi: the paper\'s Multiple NCA; '
                  'fixed: the fixed-mask baseline of Randazzo et al. 2021')
flags.DEFINE_integer('gif_every', 5, 'a GIF frame every N steps', lower_bound=1)
flags.DEFINE_string('name', None, 'output file prefix (default: the pairing or "takeover")')
flags.DEFINE_string('workdir', None, 'output directory', required=True)


flags.register_validator('workdir', binary.directory_path, message='--workdir must be a '
                         'directory path (neither it nor a folder above it an existing file)')


@flags.validator('damage', message='--damage must be STEP:disc:R (R > 0) or STEP:half:ANGLE, '
                 'e.g. --damage=300:disc:8')
def _check_damage(values):
  try:
    return all(damage.parse_damage(v) for v in values)
  except damage.DamageError:
    return False


@flags.validator('injection', message=f'--injection must be {injection.RANGES}')
def _check_injection(value):
  if value is None:
    return True
  try:
    injection.parse_injection(value)
  except injection.InjectionError:
    return False
  return True


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if FLAGS.race:
    return _race()
  name = FLAGS.name or (FLAGS.pairing or 'takeover').replace('/', '_').replace('%', 'pct')
  if FLAGS.control:
    name += '_control'
  result, paths = takeover.run_named(
      FLAGS.workdir, name=name, steps_before=FLAGS.steps_before,
      steps_after=FLAGS.steps_after, seeds=FLAGS.seeds, seed=FLAGS.seed, mode=FLAGS.mode,
      gif_every=FLAGS.gif_every, pairing=FLAGS.pairing, original=FLAGS.original,
      adversary=FLAGS.adversary, injection=FLAGS.injection, target=FLAGS.target,
      control=FLAGS.control, convention=FLAGS.convention,
      damages=[damage.parse_damage(v) for v in FLAGS.damage], log=print)
  total = FLAGS.steps_before + FLAGS.steps_after
  for step, values in takeover.summary(result, (100, 200, total)).items():
    text = ', '.join(f'{k} {m:.4g} ± {s:.2g}' for k, (m, s) in values.items() if m == m)
    print(f'step {step}: {text}')
  for kind, path in paths.items():
    print(f'{kind}: {path}')
  return 0



def _race():
  """--race: several adversaries on one organism; their wins and coexistence."""
  if len(FLAGS.race) < 2 or FLAGS.pairing or FLAGS.adversary or FLAGS.control:
    raise app.UsageError('--race takes two or more adversaries (NAME or NAME@INJECTION), '
                         'without --pairing, --adversary or --control')
  total = FLAGS.steps_before + FLAGS.steps_after
  result = race.run_named(
      FLAGS.race, original=FLAGS.original, convention=FLAGS.convention,
      steps_before=FLAGS.steps_before, steps_after=FLAGS.steps_after, seeds=FLAGS.seeds,
      seed=FLAGS.seed, record_steps=takeover.default_record_steps(FLAGS.steps_before,
                                                                  FLAGS.steps_after))
  s = result.summary()
  print(f'race of {", ".join(result.names[1:])} over {s["organisms"]} organisms, {total} steps: '
        'wins ' + ', '.join(f'{k} {v}' for k, v in s['wins'].items()) +
        f'; coexistence median {s["coexistence_median"]:g} steps (max {s["coexistence_max"]})')
  for kind, path in race.write_outputs(result, FLAGS.workdir, FLAGS.name or 'race').items():
    print(f'{kind}: {path}')
  return 0


run = binary.entry(main)  # the console script's entry point


if __name__ == '__main__':
  run()
