"""Flags shared by the training binaries (tools.train_adversary, tools.train_nca).

Every override is validated (by building the config) before anything touches the workdir.
"""

import pathlib

from absl import app
from absl import flags

from tf_multinca import configs
from tf_multinca.training import distribute
from tf_multinca.training import loop

# Direct flags for the most common overrides: flag name -> config field.
COMMON_OVERRIDES = {
    'steps': 'steps', 'seed': 'seed', 'lr': 'lr', 'batch_size': 'batch_size',
    'target': 'target', 'convention': 'convention',
}
ADVERSARY_OVERRIDES = {'original': 'original', 'injection': 'injection',
                       'adversary_init': 'adversary_init', 'l3': 'l3'}
NCA_OVERRIDES = {'register': 'register'}


def define_flags(kind, default_config):
  """Defines --config, --workdir, --set, --list_configs and the direct overrides."""
  names = configs.names(kind)
  flags.DEFINE_string('config', default_config,
                      f'named config; one of: {", ".join(names)}')
  flags.DEFINE_string('workdir', None, 'run directory: checkpoints, TensorBoard, metrics, '
                      'export; a run resumes from it')
  flags.DEFINE_multi_string('set', [], 'config override key=value, repeatable (e.g. '
                            '--set=lr=1e-3 --set=lr_values=1e-3,1e-4); see '
                            'tf_multinca/configs/base.py for every field')
  flags.DEFINE_bool('list_configs', False, 'print the config names with their descriptions '
                    'and exit')
  flags.DEFINE_enum('strategy', 'default', list(distribute.STRATEGIES),
                    'tf.distribute strategy: default (one device), mirrored (every GPU, or '
                    'the logical CPU devices of --cpu_devices when there is no GPU) or '
                    'multi_worker (several hosts, from the TF_CONFIG environment variable; '
                    'README: "Running on several machines"); the batch is split over the '
                    'replicas and the results match one device')
  flags.DEFINE_integer('cpu_devices', 0, 'split the host CPU into this many logical devices '
                       'first (0: no split); with --strategy=mirrored and no GPU, one replica '
                       'each', lower_bound=0)
  direct = dict(COMMON_OVERRIDES)
  direct.update(ADVERSARY_OVERRIDES if kind == 'adversary' else NCA_OVERRIDES)
  for flag, field in direct.items():
    flags.DEFINE_string(flag, None, f'override of the config field {field}')

  # Any config name passes here, so that one of the other kind gets the binary to use.
  @flags.validator('config', message=f'--config must be one of: {", ".join(names)}')
  def _check_config(value):  # pylint: disable=unused-variable
    return value in configs.names()

  @flags.validator('workdir', message='--workdir must be a directory path (not an existing '
                   'file)')
  def _check_workdir(value):  # pylint: disable=unused-variable
    return value is None or not pathlib.Path(value).is_file()

  return direct


def overrides(values, direct):
  """The `key=value` overrides of the parsed flag values (direct flags after --set)."""
  out = list(values['set'] or ())
  out += [f'{field}={values[flag]}' for flag, field in direct.items()
          if values.get(flag) is not None]
  return out


def build_config(values, direct):
  """The validated config of parsed flag values; raises ConfigError."""
  return configs.get_config(values['config'], overrides(values, direct))


def define_binary(kind, default_config):
  """Defines the flags of a training binary of `kind` and returns its `main(argv)` (whose
  module, this one, holds the flags `--help` lists)."""
  direct = define_flags(kind, default_config)
  return lambda argv: main(kind, direct, argv)


def list_configs(kind):
  """The configs of `kind`, one a line with its description (`--list_configs`)."""
  names = [n for n in configs.names(kind) if not n.endswith('_testing')]
  width = max(map(len, names))
  return '\n'.join([f'{n:{width}}  {configs.get_config(n).description}' for n in names] +
                   ['', 'Each has a tiny <name>_testing variant (seconds, for tests).'])


def main(kind, direct, argv):
  """Runs the binary (under `binary.run`, which maps our errors to exit statuses): validates
  every override by building the config before anything touches the workdir, then trains."""
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {" ".join(argv[1:])}')
  f = flags.FLAGS
  if f.list_configs:
    print(list_configs(kind))
    return 0
  if not f.workdir:
    raise app.UsageError('--workdir is required (the run directory; an existing one resumes)')
  values = {name: f[name].value for name in ['config', 'set'] + list(direct)}
  config = build_config(values, direct)
  if config.kind != kind:
    other = 'train_nca' if config.kind == 'nca' else 'train_adversary'
    raise configs.ConfigError(f'--config={config.name} is an {config.kind} config; use '
                              f'python -m tools.{other}')
  config = configs.named_after_workdir(config, f.workdir)
  strategy = distribute.make_strategy(f.strategy, f.cpu_devices)
  if strategy.num_replicas_in_sync > 1:
    _log(f'{f.strategy} strategy over {strategy.num_replicas_in_sync} replicas: '
         f'{", ".join(strategy.extended.worker_devices)}')
  loop.train(config, f.workdir, log=_log, strategy=strategy)
  return 0


def _log(message):
  print(message, flush=True)
