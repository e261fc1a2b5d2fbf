r"""Grow published (or local) NCAs from their seed into PNG and GIF files.

    python -m tools.grow --models=distill/ex2_lizard,paper/lizard/persist --workdir=runs/grow

For each model: `<name>.png` (the final organisms, tiled), `<name>.gif` (the growth) and
`<name>_mse.txt` when it has a target. Intentionally short: see `tf_multinca.rollout`.
"""


from absl import app
from absl import flags

from tf_multinca import binary
from tf_multinca import grow_report

FLAGS = flags.FLAGS
flags.DEFINE_list('models', ['distill/ex2_lizard', 'paper/lizard/persist'],
                  'manifest names or weight files')
flags.DEFINE_integer('steps', 200, 'steps from the seed', lower_bound=1)
flags.DEFINE_integer('batch', 4, 'organisms grown side by side', lower_bound=1)
flags.DEFINE_integer('seed', 0, 'random seed')
flags.DEFINE_integer('zoom', 4, 'pixels per cell', lower_bound=1)
flags.DEFINE_string('workdir', None, 'output directory', required=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  for line in grow_report.grow_models(FLAGS.models, FLAGS.workdir, FLAGS.steps, FLAGS.batch,
                                      FLAGS.seed, FLAGS.zoom):
    print(line)
  return 0



run = binary.entry(main)  # the console script's entry point


if __name__ == '__main__':
  run()
