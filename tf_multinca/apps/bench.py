r"""Throughput of the NCA steps: cell-updates/s, GFLOP/s and % of the measured matmul roofline.

    TF_MULTINCA_MIRROR=../shared/mirror python -m tools.bench
    python -m tools.bench --kinds=multi2 --batches=6,64 --sizes=48 --impl=reference
    python -m tools.bench --kinds= --jobs=lizard_red,nca_growing     # time to result

Needs the published lizard weights (grown states are realistic). Figures are medians of
`--repeats` timings after warm-up; the load average around each row is printed because the
machine may be shared. See `tf_multinca.bench`.
"""

import os
import pathlib

from absl import app
from absl import flags

from tf_multinca import bench
from tf_multinca import binary
from tf_multinca import configs
from tf_multinca import fileio as io

FLAGS = flags.FLAGS
flags.DEFINE_list('kinds', ['single', 'multi2', 'multi3', 'train', 'trainer'],
                  'rows: single, multi2, multi3, train (self-contained adversary step), trainer '
                  '(the same through training.Trainer)')
flags.DEFINE_list('batches', ['1', '6', '64'], 'batch sizes')
flags.DEFINE_list('sizes', ['48', '96'], 'grid sides (multiples of 48)')
flags.DEFINE_list('train_batches', None, 'batch sizes of the train rows (default: --batches)')
flags.DEFINE_list('train_sizes', None, 'grid sides of the train rows (default: --sizes)')
flags.DEFINE_integer('repeats', 5, 'timed repeats per row (the median is reported)',
                     lower_bound=1)
flags.DEFINE_integer('train_repeats', 3, 'timed repeats per train row', lower_bound=1)
flags.DEFINE_float('min_seconds', 0.3, 'approximate length of one timed repeat of a step row',
                   lower_bound=0.0)
flags.DEFINE_enum('impl', None, ['reference', 'dense', 'sparse'],
                  'MultiNCA / CAModel implementation; default: the library default (sparse)')
flags.DEFINE_enum('baseline', None, ['reference', 'dense', 'sparse'],
                  'also time this implementation, alternating with each row\'s repeats, and '
                  'print its ms/step and the speedup (before / after under the same load)')
flags.DEFINE_bool('xla_masks', True, 'compile the masking of the fast MultiNCA forms with XLA')
flags.DEFINE_string('out', None, 'also write the table to this file')
flags.DEFINE_list('jobs', [], 'time to result: named configs (e.g. lizard_red,nca_growing) '
                  'trained for --job_steps through the real loop, validation included, with '
                  'the whole run projected from it')
flags.DEFINE_integer('job_steps', None, 'train steps per --jobs row (default: each config\'s '
                     'eval_every, so its validations count as in the full run)', lower_bound=1)


def _positive_ints(values, multiple=1):
  try:
    return bool(values) and all(int(v) >= 1 and int(v) % multiple == 0 for v in values)
  except ValueError:
    return False


flags.register_validator('batches', _positive_ints, message='--batches must be whole numbers '
                         '>= 1, e.g. 1,6,64')
flags.register_validator('train_batches', lambda v: v is None or _positive_ints(v),
                         message='--train_batches must be whole numbers >= 1')
for _name in ('sizes', 'train_sizes'):
  flags.register_validator(_name, lambda v: v is None or _positive_ints(v, 48),
                           message=f'--{_name} must be multiples of 48 (the states are grown '
                           'organisms tiled on the grid), e.g. 48,96')


flags.register_validator('jobs', lambda v: all(n in configs.names() for n in v),
                         message='--jobs must be named configs (python -m tools.train_adversary '
                         '--list_configs, python -m tools.train_nca --list_configs)')
flags.register_validator('kinds', lambda v: all(k in bench.KINDS for k in v),
                         message='--kinds must be some of ' + ', '.join(bench.KINDS) +
                         ' (or empty with --jobs)')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not FLAGS.kinds and not FLAGS.jobs:
    raise app.UsageError('nothing to time: give --kinds and/or --jobs')
  if FLAGS.out:  # before the benchmark runs, not after
    out = pathlib.Path(FLAGS.out)
    parent = out.parent if str(out.parent) else pathlib.Path('.')
    if out.is_dir() or not parent.is_dir() or not os.access(parent, os.W_OK):
      raise app.UsageError(f'--out={FLAGS.out}: cannot write there (not a writable directory '
                           'for the file); pick another path')
  ints = lambda xs: [int(v) for v in xs] if xs else None
  kwargs = {'impl': FLAGS.impl} if FLAGS.impl else {}
  if not FLAGS.xla_masks:
    kwargs['xla_masks'] = False
  tables = []
  if FLAGS.kinds:
    peak, rule_rate, rows = bench.run_benchmark(
        FLAGS.kinds, ints(FLAGS.batches), ints(FLAGS.sizes), FLAGS.repeats, FLAGS.min_seconds,
        kwargs, ints(FLAGS.train_batches), ints(FLAGS.train_sizes), FLAGS.train_repeats,
        {'impl': FLAGS.baseline} if FLAGS.baseline else None)
    tables.append(bench.format_table(rows, peak, rule_rate,
                                     title=f'impl={FLAGS.impl or "default"} '
                                     f'xla_masks={FLAGS.xla_masks} baseline={FLAGS.baseline}'))
  if FLAGS.jobs:
    jobs = []
    for name in FLAGS.jobs:
      jobs.append(bench.time_job(name, FLAGS.job_steps))
      print(bench.format_jobs(jobs[-1:]).splitlines()[1], flush=True)
    tables.append('time to result\n' + bench.format_jobs(jobs))
  table = '\n\n'.join(tables)
  print(table)
  if FLAGS.out:
    io.write_text(FLAGS.out, table + '\n')
  return 0



run = binary.entry(main)  # the console script's entry point


if __name__ == '__main__':
  run()
