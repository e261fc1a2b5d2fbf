"""Choosing the `tf.distribute` strategy a training run uses.

The train step (`loop.Trainer`) is written once for any strategy: the batch, the pool work and
every random number are drawn for the whole batch outside the replicas, each replica rolls out
its slice and returns its gradients, and the summed gradients are applied once. Under the default
strategy (one device) `strategy.run` is a plain call, so one device and a mirrored run follow the
same code and agree up to float round-off.
"""

import tensorflow as tf

from tf_multinca import errors

STRATEGIES = ('default', 'mirrored')


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


def make_strategy(name='default', cpu_devices=0):
  """The strategy called `name`.

  Args:
    name: 'default' (one device: the first GPU if TensorFlow sees one, else the CPU) or
      'mirrored' (`tf.distribute.MirroredStrategy` over every GPU; on a machine without GPUs,
      over the logical CPU devices).
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
