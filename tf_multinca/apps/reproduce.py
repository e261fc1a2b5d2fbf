r"""Reproduce the paper's experiments into the results zoo, and write results/REPORT.md.

    python -m tools.reproduce                                   # every experiment of the paper
    python -m tools.reproduce --experiments=lizard_red,bug_to_butterfly --workdir=runs/reproduce
    python -m tools.reproduce --report_only                     # seconds: the report alone
    python -m tools.reproduce --experiments=perturbation --parallel=2   # 2 runs at a time
    python -m tools.reproduce --evaluate_test                   # committed entries on the test set

Each experiment trains in <workdir>/<name> (an interrupted run resumes there), is evaluated with
the published adversary and the control on the same organisms, on the 32 development seeds
(compared while tuning) and on the 128 organisms of the held-out test set (the report's
headline; read when an entry is written, never to choose anything), and is written to
results/<name>/ (adversary.weights.h5, run.json, strips). --evaluate_test evaluates committed
entries on the test set again without training (after a change of the test set or the bar).
An experiment whose results/<name>/ already holds the same config is skipped unless --retrain. Exit status: 0 done, 2 bad input,
3 a loss diverged (1: some runs of a --parallel fan-out failed; their logs are named). With
--parallel=N, up to N runs train at once, each in its own process logging to
<workdir>/<name>/reproduce.log, with the CPU's threads shared out; one line per run reports
progress, and the report is written once at the end. The work is in
tf_multinca.training.reproduce.
"""

from absl import app
from absl import flags

from tf_multinca import binary
from tf_multinca import report
from tf_multinca import zoo
from tf_multinca.training import reproduce

FLAGS = flags.FLAGS
flags.DEFINE_list('experiments', list(reproduce.PAPER),
                  'experiments (config names) to reproduce: ' + ', '.join(reproduce.PAPER) +
                  ' (and their _testing variants); "perturbation" is fig. 15: its four regimes '
                  'times the spray rates 80, 50, 25 and 5 %; one cell of it is '
                  '"perturbation/<regime>/spray_<pct>pct"')
flags.DEFINE_string('workdir', 'runs/reproduce', 'training runs live in <workdir>/<name> and '
                    'resume from there')
flags.DEFINE_string('results_dir', None, 'the results zoo (default: $TF_MULTINCA_RESULTS, else '
                    'results/ of the checkout)')
flags.DEFINE_bool('retrain', False, 'train again even where results/<name> holds the same config '
                  '(the previous run directory is moved aside, not deleted)')
flags.DEFINE_bool('report_only', False, 'only rebuild results/REPORT.md and its figures from the '
                  'committed files (no training, no evaluation)')
flags.DEFINE_integer('eval_seeds', reproduce.EVAL_SEEDS, 'organisms of each development '
                     'evaluation (the seeds recipes are compared on)', lower_bound=1)
flags.DEFINE_integer('test_seeds', reproduce.TEST_SEEDS, 'organisms of each held-out test set '
                     'evaluation (the report\'s headline)', lower_bound=1)
flags.DEFINE_bool('evaluate_test', False, 'evaluate the committed entries of --experiments on '
                  'the held-out test set (no training), then rebuild the report')
flags.DEFINE_multi_string('set', [], 'config override key=value for every experiment')
flags.DEFINE_integer('parallel', 1, 'runs trained at once, each in its own process (the CPU '
                     'threads shared out between them)', lower_bound=1)
flags.DEFINE_bool('report', True, 'rebuild results/REPORT.md at the end (--noreport: the '
                  'processes of a --parallel fan-out leave it to their parent)')


@flags.validator('experiments', message='--experiments must name the paper\'s experiments: ' +
                 ', '.join(reproduce.PAPER + (reproduce.PERTURBATION,)) +
                 ' (or their _testing variants, or a sweep cell perturbation/<regime>/'
                 'spray_<pct>pct)')
def _check_experiments(values):
  try:
    return bool(values) and all(reproduce.kind_of(v) for v in values)
  except reproduce.ReproduceError:
    return False


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  cells = reproduce.cells(FLAGS.experiments, FLAGS.set)  # every override, before anything runs
  if FLAGS.evaluate_test:
    results = FLAGS.results_dir or zoo.results_dir()
    done = reproduce.evaluate_test_set([c.entry for c in cells], results, FLAGS.test_seeds,
                                       log=lambda m: print(m, flush=True))
    if FLAGS.report:
      print(f'report: {report.write_report(results)}')
    return 0 if all(r.test.verdict.passed for r in done.values()) else 1
  out = reproduce.run(
      FLAGS.experiments, FLAGS.workdir, FLAGS.results_dir or zoo.results_dir(),
      retrain=FLAGS.retrain, report_only=FLAGS.report_only, seeds=FLAGS.eval_seeds,
      overrides=FLAGS.set, log=lambda m: print(m, flush=True), parallel=FLAGS.parallel,
      write_report=FLAGS.report, test_seeds=FLAGS.test_seeds)
  for name, record in out['records'].items():
    print(f'{name}: {"passes" if record.headline.verdict.passed else "does not pass"} the bar '
          'on the test set')
  return 0



run = binary.entry(main)  # the console script's entry point


if __name__ == '__main__':
  run()
