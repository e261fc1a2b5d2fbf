r"""Fig. 15 of the paper: perturbation regimes times spray rates; writes a table and a plot.

    python -m tools.perturbation_sweep --workdir=runs/sweep
    python -m tools.perturbation_sweep --workdir=runs/sweep --rates=0.5,0.1 \
        --regimes=perturbation_copy_l3,perturbation_copy --set=steps=300

Writes sweep.csv, sweep.md, sweep.json and sweep.png under --workdir; each run lives in
<workdir>/<regime>/spray_<pct> and resumes; --parallel=N trains N of them at once, in their own
processes. The work is in tf_multinca.training.sweep.
"""

from absl import app
from absl import flags

from tf_multinca import binary
from tf_multinca import configs
from tf_multinca.configs import adversary
from tf_multinca.training import sweep

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', None, 'sweep directory', required=True)
flags.DEFINE_list('regimes', list(adversary.PERTURBATION_REGIMES),
                  'config names of the regimes (fig. 15: ' +
                  ', '.join(adversary.PERTURBATION_REGIMES) + '; _testing variants too)')
flags.DEFINE_list('rates', [str(r) for r in sweep.DEFAULT_RATES],
                  'spray rates in (0, 1], comma-separated')
flags.DEFINE_multi_string('set', [], 'config override key=value for every run, repeatable')
flags.DEFINE_integer('parallel', 1, 'runs trained at once, each in its own process logging to '
                     '<run dir>/train.log (the CPU threads shared out between them)',
                     lower_bound=1)


@flags.validator('rates', message='--rates must be numbers in (0, 1], e.g. 0.5,0.1,0.05')
def _check_rates(values):
  try:
    return bool(values) and all(0.0 < float(v) <= 1.0 for v in values)
  except ValueError:
    return False


@flags.validator('regimes', message='--regimes must be adversary config names (see '
                 'python -m tools.train_adversary --list_configs)')
def _check_regimes(values):
  return bool(values) and all(v in configs.names('adversary') for v in values)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')

  for r in FLAGS.regimes:  # every override, before anything is trained
    configs.get_config(r, FLAGS.set)
  out = sweep.run_sweep(FLAGS.workdir, FLAGS.regimes, [float(r) for r in FLAGS.rates],
                        FLAGS.set, log=lambda m: print(m, flush=True), parallel=FLAGS.parallel)
  print(open(out['markdown'], encoding='utf-8').read())
  for k in ('csv', 'markdown', 'png'):
    print(f'{k}: {out[k]}')
  return 0



run = binary.entry(main)  # the console script's entry point


if __name__ == '__main__':
  run()
