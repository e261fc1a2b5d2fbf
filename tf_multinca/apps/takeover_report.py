r"""Runs every published pairing of the paper and its control; writes report.md / report.json.

    python -m tools.takeover_report --workdir=runs/takeover_report --seeds=8

The work is in `tf_multinca.takeover.report`.
"""

import pathlib

from absl import app
from absl import flags

from tf_multinca import binary

from tf_multinca import hub
from tf_multinca import takeover

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'output directory', required=True)
flags.DEFINE_list('pairings', None, 'subset of ' + ', '.join(sorted(hub.PAIRINGS)))
flags.DEFINE_integer('seeds', 8, 'samples per pairing', lower_bound=1)
flags.DEFINE_integer('seed', 0, 'random seed')
flags.DEFINE_integer('steps_after', 500, 'steps after injection', lower_bound=1)


@flags.validator('pairings', message='unknown pairing; see --helpfull')
def _check(values):
  return values is None or all(v in hub.PAIRINGS for v in values)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if pathlib.Path(FLAGS.workdir).exists() and not pathlib.Path(FLAGS.workdir).is_dir():
    raise app.UsageError(f'--workdir={FLAGS.workdir} is a file; pass a directory')
  steps = (100, 200, 60 + FLAGS.steps_after)
  takeover.report(FLAGS.workdir, FLAGS.pairings, seeds=FLAGS.seeds, seed=FLAGS.seed,
                  steps_after=FLAGS.steps_after, report_steps=steps)
  print((pathlib.Path(FLAGS.workdir) / 'report.md').read_text())



run = binary.entry(main)  # the console script's entry point


if __name__ == '__main__':
  run()
