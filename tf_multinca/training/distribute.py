"""Choosing the `tf.distribute` strategy a training run uses.

The train step (`loop.Trainer`) is written once for any strategy: the batch, the pool work and
every random number are drawn for the whole batch outside the replicas, each replica rolls out
its slice and returns its gradients, and the summed gradients are applied once. Under the default
strategy (one device) `strategy.run` is a plain call, so one device and a mirrored run follow the
same code and agree up to float round-off.

Several hosts (`multi_worker`): `tf.distribute.MultiWorkerMirroredStrategy`, configured by the
`TF_CONFIG` environment variable as TensorFlow documents it; TensorFlow does the communication.
Every worker draws the same random numbers for the whole global batch (same seed, same draws),
so N workers follow one device; only the chief writes the run's files (`is_chief`).

A preempted job (SIGTERM or Ctrl-C on any worker): at every step boundary the workers agree,
by one all-reduce of two flags (`agreed_signal`), whether any of them was signalled, so every
worker checkpoints the same step and stops. TensorFlow's `PreemptionCheckpointHandler` does
the same through its coordination service, but it does not fit this loop: it restores the
checkpoint itself on construction (past `workdir.Checkpoints`' recovery of unreadable ones),
counts its own calls rather than our step (a counter it checkpoints only when preempted, so a
run resumed from a regular checkpoint would disagree), replaces our SIGTERM handler (no
Ctrl-C, no bounded grace) and ends the process itself. The all-reduce costs one scalar
collective per step (steps take ~1 s), and a worker lost meanwhile fails it as it fails the
step's own collectives (`loop.WorkerLostError`).
"""

import json
import os
import signal

import tensorflow as tf

from tf_multinca import errors

STRATEGIES = ('default', 'mirrored', 'multi_worker')
# A collective that waits longer than this for a peer fails (a lost worker ends the job with an
# error instead of a hang). Long enough for the slowest step and a validation between two.
COLLECTIVE_TIMEOUT_S = 300.0
TIMEOUT_ENV = 'TF_MULTINCA_COLLECTIVE_TIMEOUT'  # seconds, overrides COLLECTIVE_TIMEOUT_S


class StrategyError(errors.Error, ValueError):
  """A strategy that cannot be set up as asked (bad name, devices already initialised)."""


def split_cpu(n):
  """Splits the host CPU into `n` logical devices (before TensorFlow initialises its devices).

  Lets a machine without accelerators run a real multi-replica `MirroredStrategy` (tests, or
  checking a distributed run before renting GPUs). A no-op when the split is already in place.

  Raises:
    StrategyError: if TensorFlow's devices were initialised with another configuration.
  """
  n = int(n)
  if n < 1:
    raise StrategyError(f'cpu_devices must be >= 1, got {n}')
  cpu = tf.config.list_physical_devices('CPU')[0]
  current = tf.config.get_logical_device_configuration(cpu)
  if current is not None and len(current) == n:
    return
  try:
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
  except RuntimeError as e:
    raise StrategyError(
        f'cannot split the CPU into {n} logical devices: TensorFlow has already initialised '
        f'its devices ({e}). Split it before any TensorFlow op runs (the training binaries '
        'do this for --cpu_devices).') from None


def parse_tf_config(text):
  """The validated `TF_CONFIG` of a multi-worker job: (cluster {type: [host:port]}, task type,
  task index).

  Raises:
    StrategyError: missing, not JSON, no chief or worker, an unknown task, a bad address.
  """
  example = ('e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
             '"task": {"type": "worker", "index": 0}}\'')
  if not text:
    raise StrategyError(f'--strategy=multi_worker needs the TF_CONFIG environment variable; '
                        f'{example}')
  try:
    doc = json.loads(text)
  except ValueError as e:
    raise StrategyError(f'TF_CONFIG is not JSON ({e}); {example}') from None
  cluster = doc.get('cluster') if isinstance(doc, dict) else None
  task = doc.get('task') if isinstance(doc, dict) else None
  if not isinstance(cluster, dict) or not cluster:
    raise StrategyError(f'TF_CONFIG has no "cluster" of tasks; {example}')
  for kind, addresses in cluster.items():
    if kind not in ('chief', 'worker', 'evaluator'):
      raise StrategyError(f'TF_CONFIG cluster has a task type {kind!r}; a multi-worker job has '
                          '"chief" and "worker" tasks')
    if (not isinstance(addresses, list) or not addresses or
        not all(isinstance(a, str) and a.rpartition(':')[2].isdigit() for a in addresses)):
      raise StrategyError(f'TF_CONFIG cluster {kind!r} must list "host:port" addresses, got '
                          f'{addresses!r}')
  if not cluster.get('chief') and not cluster.get('worker'):
    raise StrategyError('TF_CONFIG cluster has neither a "chief" nor a "worker"')
  if len(cluster.get('chief', [])) > 1:
    raise StrategyError(f'TF_CONFIG lists {len(cluster["chief"])} chiefs; a job has one')
  if not isinstance(task, dict) or task.get('type') not in cluster:
    raise StrategyError(f'TF_CONFIG task {task!r} is not one of the cluster\'s task types '
                        f'({", ".join(cluster)}); {example}')
  index = task.get('index', 0)
  if not isinstance(index, int) or not 0 <= index < len(cluster[task['type']]):
    raise StrategyError(f'TF_CONFIG task index {index!r} is out of range: the cluster has '
                        f'{len(cluster[task["type"]])} {task["type"]} task(s)')
  return cluster, task['type'], index


def is_chief(strategy):
  """Whether this process writes the run's files: always, except on the workers of a
  multi-worker job other than the chief (the chief task, else worker 0)."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return True
  kind, index = resolver.task_type, resolver.task_id
  if kind is None:
    return True
  has_chief = 'chief' in resolver.cluster_spec().as_dict()
  return kind == 'chief' or (kind == 'worker' and index == 0 and not has_chief)


def task_name(strategy):
  """'worker 1', 'chief 0', or '' outside a multi-worker job (for log lines)."""
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None or getattr(resolver, 'task_type', None) is None:
    return ''
  return f'{resolver.task_type} {resolver.task_id}'


def make_strategy(name='default', cpu_devices=0):
  """The strategy called `name`.

  Args:
    name: 'default' (one device: the first GPU if TensorFlow sees one, else the CPU),
      'mirrored' (`tf.distribute.MirroredStrategy` over every GPU; on a machine without GPUs,
      over the logical CPU devices) or 'multi_worker' (`MultiWorkerMirroredStrategy` over the
      hosts of `TF_CONFIG`, checked by `parse_tf_config`; its collectives time out after
      `COLLECTIVE_TIMEOUT_S` or `$TF_MULTINCA_COLLECTIVE_TIMEOUT` seconds).
    cpu_devices: if > 0, first split the host CPU into this many logical devices
      (`split_cpu`); with 'mirrored' and no GPU, each becomes a replica.

  Returns:
    A `tf.distribute.Strategy`.
  """
  if name not in STRATEGIES:
    raise StrategyError(f'unknown strategy {name!r}; expected one of {", ".join(STRATEGIES)}')
  if cpu_devices:
    split_cpu(cpu_devices)
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'multi_worker':
    parse_tf_config(os.environ.get('TF_CONFIG', ''))
    try:
      timeout = float(os.environ.get(TIMEOUT_ENV, COLLECTIVE_TIMEOUT_S))
    except ValueError:
      raise StrategyError(f'{TIMEOUT_ENV} must be a number of seconds, got '
                          f'{os.environ[TIMEOUT_ENV]!r}') from None
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=timeout)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
  gpus = tf.config.list_logical_devices('GPU')
  devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices('CPU')]
  return tf.distribute.MirroredStrategy(devices)


def check_batch(batch_size, strategy):
  """Raises StrategyError unless `batch_size` splits evenly over the strategy's replicas."""
  n = strategy.num_replicas_in_sync
  if batch_size % n:
    raise StrategyError(
        f'batch_size {batch_size} does not split over {n} replicas; use a multiple of {n} '
        '(--set=batch_size=...) or fewer devices')


def agreed_signal(strategy, signum):
  """The stop signal every process of `strategy` acts on at this step boundary.

  Each process passes the signal it received (0: none) and all of them get the same answer:
  SIGTERM if any received SIGTERM, else SIGINT if any received SIGINT, else 0. Under
  `MultiWorkerMirroredStrategy` this is a collective: every worker must call it at the same
  step boundaries (the loop calls it at each one). One process (the default or a mirrored
  strategy) gets its own signal back, through the same reduction.
  """
  flags = tf.constant([float(signum == signal.SIGTERM), float(signum == signal.SIGINT)])
  total = strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.identity(flags)),
                          axis=None).numpy()
  if total[0] > 0:
    return int(signal.SIGTERM)
  return int(signal.SIGINT) if total[1] > 0 else 0
