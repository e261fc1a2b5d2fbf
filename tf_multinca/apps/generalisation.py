r"""How adversaries generalise across injections, and the minimal intervention for each.

    python -m tools.generalisation                       # every pairing, every injection
    python -m tools.generalisation --adversaries=lizard_red,results/lizard_red \
        --injections=square:2,spray:0.1 --out_dir=runs/generalisation

Each adversary (a published pairing's short name, a published adversary, results/<name>) runs
under each injection on the same organisms (by default the held-out test set's 128), injected
after step 60 and measured 500 steps later against its pairing's target. Writes table.csv,
table.md, heatmap.png / .svg, minimal.csv (the smallest square side and spray rate with complete
takeovers in 90 % of the organisms, and the same for the fixed-mask baseline of
--fixed_mask) and provenance.json into --out_dir. Exit status: 0 done, 2 bad input. The work is in
tf_multinca.generalisation.
"""

from absl import app
from absl import flags

from tf_multinca import binary
from tf_multinca import generalisation
from tf_multinca import zoo
from tf_multinca.training import workdir

FLAGS = flags.FLAGS
flags.DEFINE_list('adversaries', None, 'adversaries (default: every published pairing and our '
                  'fig. 12 / 14 entries)')
flags.DEFINE_list('injections', list(generalisation.INJECTIONS), 'injection specs')
flags.DEFINE_list('fixed_mask', ['lizard_red'], 'adversaries whose fixed-mask baseline gets a '
                  'minimal intervention too')
flags.DEFINE_bool('minimal', True, 'search the minimal interventions')
flags.DEFINE_integer('organisms', zoo.TEST_SEEDS, 'organisms per cell', lower_bound=1)
flags.DEFINE_integer('seed', zoo.TEST_SEED, 'generator seed of the organisms (default: the '
                     'held-out test set)')
flags.DEFINE_integer('inject_at', 60, 'growth steps before injection', lower_bound=1)
flags.DEFINE_integer('age', 500, 'steps after injection to the measurement', lower_bound=1)
flags.DEFINE_string('out_dir', 'results/generalisation', 'output directory')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  evaluator = generalisation.Evaluator(FLAGS.organisms, FLAGS.seed, FLAGS.inject_at, FLAGS.age)
  specs = [generalisation.canonical(s) for s in FLAGS.injections]  # every spec, before any run
  generalisation.run(FLAGS.out_dir, FLAGS.adversaries, specs, FLAGS.fixed_mask, FLAGS.minimal,
                     evaluator, provenance={'commit': workdir.code_commit()},
                     log=lambda m: print(m, flush=True))
  print(f'outputs: {FLAGS.out_dir}')
  return 0


run = binary.entry(main)  # the console script's entry point

if __name__ == '__main__':
  run()
