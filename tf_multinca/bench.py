"""Throughput benchmark of the NCA steps against the machine's measured matmul roofline.

Rows: the single step, the 2-rule and 3-rule Multiple NCA steps, one self-contained adversary
training step ('train': an 80-step rollout under `tf.GradientTape`, backward through the
adversary, Adam update) and the same through the project's training loop ('trainer':
`training.Trainer`), each at several batch sizes and grid sides. States are realistic:
published organisms grown from their seed for 60 steps, then a 2x2 square of adversary cells
injected; larger grids tile the 48x48 grid, larger batches repeat the grown samples.

On a shared machine, `baseline_kwargs` times a baseline (e.g. the readable 'reference' form)
alternately with each row, so that before and after see the same load.

A cell-update is one cell of the grid advanced one step (`B * H * W` per step, every cell
counted, as in the issue). Nominal FLOPs count what the dense formulation would do: per rule
and cell, the perception (16 channels x 3 kernels x 9 taps x 2) and the two 1x1 convs
(2 * 48 * 128 + 2 * 128 * 16), 17,248 FLOP; a training step counts 3x its forward steps
(forward, data gradient, weight gradient). The roofline is the measured float32 matmul peak
divided by the nominal FLOPs of one cell-update; a sparse path that skips idle cells can
exceed the dense roofline, which is why the percentage is of cell-updates/s.

Every figure is the median of `repeats` timings after warm-up; the 1-minute load average is
recorded around each row, since the machine is shared.
"""

import dataclasses
import os
import statistics
import tempfile
import time

import tensorflow as tf

from tf_multinca import configs
from tf_multinca import injection
from tf_multinca import layout
from tf_multinca import metrics
from tf_multinca import multi
from tf_multinca import pretrained
from tf_multinca import targets
from tf_multinca import text
from tf_multinca.training import loop

keras = tf.keras

ORIGINAL = 'paper/lizard/persist'
PAIRINGS = ('paper/lizard/virus/lizard_persist_to_red_squareside_2',
            'paper/lizard/virus/lizard_persist_to_blue_squareside_2')
TARGET = 'paper/images/lizard_red'
KINDS = ('single', 'multi2', 'multi3', 'train', 'trainer')

PERCEPTION_FLOPS = layout.CHANNEL_N * layout.PERCEPTION_KERNELS * 9 * 2
RULE_FLOPS = (2 * layout.perception_n() * layout.HIDDEN_UNITS
              + 2 * layout.HIDDEN_UNITS * layout.CHANNEL_N)
FLOPS_PER_RULE_CELL = PERCEPTION_FLOPS + RULE_FLOPS  # 17,248
TRAIN_FLOP_FACTOR = 3  # forward, gradient w.r.t. the data, gradient w.r.t. the weights


def load_avg():
  """The 1-minute load average (NaN where the OS does not report it)."""
  try:
    return os.getloadavg()[0]
  except OSError:
    return float('nan')


def _median_time(fn, repeats, warmup=1):
  """Median wall time of `fn()` over `repeats` calls after `warmup` calls."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return statistics.median(times)


def matmul_peak(n=2048, repeats=5):
  """Measured float32 matmul throughput, GFLOP/s, of an `n`^3 product (median of repeats)."""
  a = tf.random.uniform([n, n])
  b = tf.random.uniform([n, n])
  mm = tf.function(lambda: tf.reduce_sum(tf.matmul(a, b)[:1, :1]))
  t = _median_time(lambda: mm().numpy(), repeats, warmup=2)
  return 2.0 * n ** 3 / t / 1e9


def rule_matmul_rate(cells=13824, repeats=5):
  """GFLOP/s of the rule's own matmul shapes `[N, 48] x [48, 128]`, ReLU, `[128, 16]`."""
  p = tf.random.uniform([cells, layout.perception_n()])
  w1 = tf.random.uniform([layout.perception_n(), layout.HIDDEN_UNITS])
  w2 = tf.random.uniform([layout.HIDDEN_UNITS, layout.CHANNEL_N])
  mm = tf.function(lambda: tf.reduce_sum(tf.matmul(tf.nn.relu(tf.matmul(p, w1)), w2)[:1]))
  t = _median_time(lambda: mm().numpy(), repeats, warmup=2)
  return RULE_FLOPS * cells / t / 1e9


@dataclasses.dataclass
class States:
  """Grown benchmark states at 48x48 and the models that made them.

  Attributes:
    single: `[B0, 48, 48, 16]` the original grown alone (single layout).
    multi: {k: `[B0, 48, 48, 15 + k]`} grown in rule 0, then one 2x2 square per adversary.
    rules: [original, red adversary, blue adversary] `CAModel`s.
    target: `[48, 48, 4]` padded target of the red adversary.
  """
  single: tf.Tensor
  multi: dict
  rules: list
  target: tf.Tensor


def grow_states(batch=6, grow_steps=60, seed=0, step_kwargs=None):
  """Grows the benchmark organisms (needs the published weights; see `pretrained`).

  Args:
    batch: samples grown (larger batches repeat them).
    grow_steps: steps from the seed before injection.
    seed: seed of the generator drawing fire masks and square positions.
    step_kwargs: keyword arguments of `multi.MultiNCA` used for growing.

  Returns:
    `States`.
  """
  pairs = [pretrained.load_pairing(p) for p in PAIRINGS]
  rules = [pairs[0].original, pairs[0].adversary, pairs[1].adversary]
  conv = rules[0].convention
  rng = tf.random.Generator.from_seed(seed)
  single_step = tf.function(lambda s: rules[0](s, rng=rng))
  x = rules[0].seed(batch)
  for _ in range(grow_steps):
    x = single_step(x)
  grown = {}
  for k in (2, 3):
    m = multi.MultiNCA(rules[:k], **(step_kwargs or {}))
    step = tf.function(lambda s, m=m: m(s, rng=rng))
    y = m.seed(batch)
    for _ in range(grow_steps):
      y = step(y)
    for adv in range(1, k):
      mask = injection.square_mask(y, 2, conv.padding, rng)
      y = injection.inject(y, mask, 0, adv)
    grown[k] = y
  target = tf.constant(targets.build_target(TARGET, conv))
  return States(single=x, multi=grown, rules=rules, target=target)


def resize_state(x, batch, size):
  """Repeats samples to `batch` and tiles the grid to `size` (a multiple of its side)."""
  reps = -(-batch // x.shape[0])
  x = tf.tile(x, [reps, 1, 1, 1])[:batch]
  t = size // x.shape[1]
  if t * x.shape[1] != size:
    raise ValueError(f'size {size} is not a multiple of the grid side {x.shape[1]}')
  return tf.tile(x, [1, t, t, 1]) if t > 1 else x


def make_rollout(step, steps):
  """`tf.function` applying `step` `steps` times, feeding the state back."""
  @tf.function
  def run(x):
    for _ in tf.range(steps):
      x = step(x)
    return x
  return run


def make_train_step(net, target, steps=80, old_weight=1e-3, learning_rate=1e-3, seed=0):
  """A self-contained adversary training step: rollout, loss, gradient, Adam update.

  loss = mean over the batch of `L_target(x_T) + old_weight * N_old(x_T)`; gradients w.r.t.
  rule 1 (the adversary) only.

  Args:
    net: a `MultiNCA` whose rule 1 is trained.
    target: `[H, W, 4]`.

  Returns:
    `tf.function` `[B, H, W, 15 + k]` -> scalar loss.
  """
  adv = net.rules[1]
  opt = keras.optimizers.Adam(learning_rate)
  opt.build(adv.trainable_variables)
  rng = tf.random.Generator.from_seed(seed)

  @tf.function
  def train_step(x):
    with tf.GradientTape() as tape:
      for _ in tf.range(steps):
        x = net(x, rng=rng)
      loss = tf.reduce_mean(metrics.target_loss(x, target) + old_weight * metrics.old_cells(x))
    grads = tape.gradient(loss, adv.trainable_variables)
    opt.apply_gradients(zip(grads, adv.trainable_variables))
    return loss

  return train_step


def make_trainer_step(batch, size, steps=80, workdir=None):
  """The project's own train step (`training.Trainer`, config 'lizard_red') as a thunk.

  Rollouts of exactly `steps` steps, no fresh sample per step (`replace_worst=0`), so that it
  times what the self-contained 'train' row times, plus the loop's pool and loss schedules.

  Returns:
    (`() -> loss` running one train step, the `Trainer`).
  """
  config = configs.get_config('lizard_red', [
      f'batch_size={batch}', f'rollout_min={steps}', f'rollout_max={steps}', 'replace_worst=0',
      f'pool_size={max(batch, 8)}', f'grid_size={size}'])
  workdir = workdir or tempfile.mkdtemp(prefix='bench_trainer_')
  trainer = loop.Trainer(config, workdir, log=lambda *_: None)
  trainer.restore_or_init()
  step = trainer.train_step
  return (lambda: step()['loss'].numpy()), trainer


@dataclasses.dataclass
class Row:
  """One benchmark row."""
  kind: str
  batch: int
  size: int
  seconds: float  # median per step (per train step for 'train')
  cell_updates: float  # per second
  gflops: float  # nominal, per second
  roofline_pct: float
  load_before: float
  load_after: float
  baseline_seconds: float = float('nan')  # the baseline's median, timed alternately
  # Median CPU time of the process per step (every thread's): on a loaded machine it moves
  # far less than the wall time, so before / after compare on it (with one thread it is the
  # work itself; with T threads at most T x the wall time).
  cpu_seconds: float = float('nan')


def _with_impl(ca, impl):
  """A copy of `ca` with implementation `impl` ('dense' is the reference for one rule)."""
  config = dict(ca.get_config(), impl='sparse' if impl == 'sparse' else 'reference')
  return type(ca).from_config(config).set_rule_weights(ca.get_rule_weights())


def _prepare(kind, batch, size, states, step_kwargs, min_seconds, train_steps):
  """One row's work as a thunk: (thunk, steps per call, cell-updates and FLOPs per step).

  Compiles and warms the thunk up, and calibrates how many steps one call runs.
  """
  rng = tf.random.Generator.from_seed(1)
  if kind == 'trainer':
    if step_kwargs.get('impl', 'sparse') != 'sparse':
      raise ValueError("the 'trainer' row runs the library default (impl='sparse') only")
    fn, _ = make_trainer_step(batch, size, train_steps)
    fn()  # warm-up
    updates = batch * size * size * train_steps
    return fn, 1, updates, TRAIN_FLOP_FACTOR * 2 * FLOPS_PER_RULE_CELL * updates
  if kind == 'train':
    # The adversary's weights change every step: train a copy so rows do not interact.
    adv = type(states.rules[1]).from_config(states.rules[1].get_config())
    adv.set_rule_weights(states.rules[1].get_rule_weights())
    net = multi.MultiNCA([states.rules[0], adv], **step_kwargs)
    x = resize_state(states.multi[2], batch, size)
    # A tiled grid holds tiled organisms: tile the target alike.
    reps = size // states.target.shape[0]
    fn = make_train_step(net, tf.tile(states.target, [reps, reps, 1]), train_steps)
    thunk = lambda: fn(x).numpy()
    thunk()  # warm-up
    updates = batch * size * size * train_steps
    return thunk, 1, updates, TRAIN_FLOP_FACTOR * 2 * FLOPS_PER_RULE_CELL * updates
  if kind == 'single':
    ca = states.rules[0]
    if 'impl' in step_kwargs:
      ca = _with_impl(ca, step_kwargs['impl'])
    x = resize_state(states.single, batch, size)
    step, k = (lambda s: ca(s, rng=rng)), 1
  elif kind in ('multi2', 'multi3'):
    k = 3 if kind == 'multi3' else 2
    net = multi.MultiNCA(states.rules[:k], **step_kwargs)
    x = resize_state(states.multi[k], batch, size)
    step = lambda s: net(s, rng=rng)
  else:
    raise ValueError(f'unknown row kind {kind!r}; expected one of {KINDS}')
  # Calibrate the number of steps per timing on one short rollout (also the warm-up).
  probe = make_rollout(step, 2)
  t = _median_time(lambda: probe(x).numpy(), 1, warmup=1) / 2
  n = max(2, min(500, int(min_seconds / max(t, 1e-5))))
  run = make_rollout(step, n)
  thunk = lambda: run(x)[:1, :1, :1, :1].numpy()
  thunk()  # warm-up (compiles)
  updates = batch * size * size
  return thunk, n, updates, k * FLOPS_PER_RULE_CELL * updates


def run_row(kind, batch, size, states, peak_gflops, repeats=5, min_seconds=0.3,
            step_kwargs=None, train_steps=80, max_train_cells=2e7, baseline_kwargs=None):
  """Times one row, and optionally a baseline of it with the timings interleaved.

  Args:
    kind: one of `KINDS`.
    states: `States` from `grow_states`.
    peak_gflops: the measured matmul peak.
    min_seconds: each timed repeat of a step row runs enough steps to last about this long.
    step_kwargs: keyword arguments of `multi.MultiNCA` (`impl`, `xla_masks`); its 'impl'
      also picks the single step's.
    train_steps: rollout length of a train row.
    max_train_cells: train rows over this many cell-steps (`B H W steps`) are refused (an
      eighth of it for the 'reference' and 'dense' forms): the gradient tape holds all their
      activations, about 1 kB per cell-step in the sparse form.
    baseline_kwargs: None, or the `step_kwargs` of a baseline (e.g. `{'impl': 'reference'}`)
      timed in alternation with the row, so that both see the same machine load.

  Returns:
    `Row` (with `baseline_seconds` when a baseline was timed).

  Raises:
    MemoryError: a train row too large for `max_train_cells`.
  """
  if kind in ('train', 'trainer'):
    cells = batch * size * size * train_steps
    for kwargs in (step_kwargs or {}), baseline_kwargs:
      # The tape keeps every step's activations: the readable form's full-grid hidden layers
      # take about 8x the sparse form's (64 x 48 x 48 x 80 of it overflows 23 GB).
      dense = kwargs is not None and kwargs.get('impl', 'sparse') != 'sparse'
      limit = max_train_cells / 8 if dense else max_train_cells
      if kwargs is not None and cells > limit:
        raise MemoryError(f'{cells:.3g} cell-steps under the tape of impl='
                          f'{kwargs.get("impl", "sparse")} is over {limit:.3g}')
  thunk, n, updates, flops = _prepare(kind, batch, size, states, step_kwargs or {},
                                      min_seconds, train_steps)
  base = None
  if baseline_kwargs is not None:
    base, base_n, _, _ = _prepare(kind, batch, size, states, baseline_kwargs, min_seconds,
                                  train_steps)
  load_before = load_avg()
  times, base_times, cpu_times = [], [], []
  for _ in range(repeats):
    cpu = time.process_time()
    times.append(_median_time(thunk, 1, warmup=0) / n)
    cpu_times.append((time.process_time() - cpu) / n)
    if base is not None:
      base_times.append(_median_time(base, 1, warmup=0) / base_n)
  per_call = statistics.median(times)
  gflops = flops / per_call / 1e9
  return Row(kind, batch, size, per_call, updates / per_call, gflops,
             100.0 * gflops / peak_gflops, load_before, load_avg(),
             statistics.median(base_times) if base_times else float('nan'),
             statistics.median(cpu_times))


def format_table(rows, peak_gflops, rule_gflops=None, title=''):
  """The rows as a fixed-width text table (with baseline columns when rows have one)."""
  lines = []
  if title:
    lines.append(title)
  lines.append(f'matmul peak (2048^3 float32): {peak_gflops:.1f} GFLOP/s'
               + (f'; rule-shaped matmuls: {rule_gflops:.1f} GFLOP/s' if rule_gflops else ''))
  has_base = any(r.baseline_seconds == r.baseline_seconds for r in rows)  # not NaN
  lines.append(f'{"row":<7} {"batch":>5} {"grid":>6} {"ms/step":>10} {"Mcell-upd/s":>12} '
               f'{"GFLOP/s":>8} {"%roofline":>9} {"cpu ms":>8} {"load":>10}'
               + (f' {"base ms":>10} {"speedup":>7}' if has_base else ''))
  for r in rows:
    ms = f'{r.seconds * 1e3:.2f}'
    line = (f'{r.kind:<7} {r.batch:>5} {f"{r.size}x{r.size}":>6} {ms:>10} '
            f'{r.cell_updates / 1e6:>12.3f} {r.gflops:>8.1f} {r.roofline_pct:>8.1f}% '
            f'{r.cpu_seconds * 1e3:>8.2f} {r.load_before:>4.2f}-{r.load_after:<4.2f}')
    if has_base:
      line += f' {r.baseline_seconds * 1e3:>10.2f} {r.baseline_seconds / r.seconds:>6.2f}x'
    lines.append(line)
  lines.append('ms/step is per train step for the train and trainer rows (80 steps each); cpu '
               'ms: the process\'s CPU time per step, every thread\'s.')
  return '\n'.join(lines)


def run_benchmark(kinds=KINDS, batches=(1, 6, 64), sizes=(48, 96), repeats=5, min_seconds=0.3,
                  step_kwargs=None, train_batches=None, train_sizes=None, train_repeats=3,
                  baseline_kwargs=None, log=print):
  """Runs every requested row and returns (peak GFLOP/s, rule GFLOP/s, rows).

  Args:
    kinds: subset of `KINDS`.
    batches, sizes: the grid of rows (train rows use `train_batches` / `train_sizes` when set).
    step_kwargs: keyword arguments of `multi.MultiNCA` (its 'impl' also picks the single
      step's).
    train_repeats: timed repeats of a train row (each is a whole rollout).
    baseline_kwargs: `step_kwargs` of a baseline timed alternately with every row (not the
      'trainer' rows), e.g. `{'impl': 'reference'}` for before / after under the same load.
    log: called with each finished row's text.
  """
  for kind in kinds:
    if kind not in KINDS:
      raise ValueError(f'unknown row kind {kind!r}; expected one of {KINDS}')
  peak = matmul_peak()
  rule_rate = rule_matmul_rate()
  log(f'matmul peak {peak:.1f} GFLOP/s, rule-shaped {rule_rate:.1f} GFLOP/s, '
      f'load {load_avg():.2f}')
  states = grow_states()
  rows = []
  for kind in kinds:
    is_train = kind in ('train', 'trainer')
    bs = train_batches if is_train and train_batches else batches
    ss = train_sizes if is_train and train_sizes else sizes
    for size in ss:
      for b in bs:
        try:
          base = baseline_kwargs if kind != 'trainer' else None
          row = run_row(kind, b, size, states, peak, train_repeats if is_train else repeats,
                        min_seconds, step_kwargs, baseline_kwargs=base)
        except Exception as e:  # pylint: disable=broad-except
          # One broken row (e.g. the training loop changing under us) must not lose the table.
          log(f'{kind} batch {b} {size}x{size}: failed: {type(e).__name__}: {e}')
          continue
        rows.append(row)
        log(format_table([row], peak).splitlines()[2])
  return peak, rule_rate, rows


# ----------------------------------------------------------------------------------------------
# Time to result: what a researcher waits for, not one step.

@dataclasses.dataclass
class JobRow:
  """N train steps of a named config, through the real training loop, validation included.

  Attributes:
    config: the config's name.
    steps: train steps timed.
    validations: validations among them (the config's `eval_every`).
    train_s: wall time of those steps, validations included (the loop's own clock).
    s_per_step: `train_s / steps`.
    final_s: the run's end: final evaluation, the published adversary's and the export.
    full_steps: the config's `steps`.
    projected_s: the whole run at this rate: `s_per_step * full_steps + final_s`.
    load_before, load_after: the 1-minute load average around the row.
  """
  config: str
  steps: int
  validations: int
  train_s: float
  s_per_step: float
  final_s: float
  full_steps: int
  projected_s: float
  load_before: float
  load_after: float


def time_job(config_name, steps=None, workdir=None):
  """Times `steps` train steps of `config_name` (default: its `eval_every`, so that one
  validation falls in them as often as in the full run; 100 without validation) in a fresh
  workdir, then its final evaluation and export.

  Returns:
    `JobRow`.
  """
  config = configs.get_config(config_name)
  steps = steps or config.eval_every or 100
  timed = config.replace(steps=steps)
  workdir = workdir or tempfile.mkdtemp(prefix=f'bench_{config_name}_')
  load_before = load_avg()
  doc = loop.train(timed, workdir, log=lambda *_: None)
  train_s = float(doc['wall_s_this_session'])
  per_step = train_s / steps
  final_s = float(doc['eval_wall_s'])
  return JobRow(config_name, steps, steps // config.eval_every if config.eval_every else 0,
                train_s, per_step, final_s, config.steps, per_step * config.steps + final_s,
                load_before, load_avg())


def format_jobs(rows):
  """Job rows as a text table."""
  lines = [f'{"config":<22} {"steps":>5} {"valid.":>6} {"s/step":>7} {"final s":>8} '
           f'{"full run":>9} {"projected":>10} {"load":>10}']
  for r in rows:
    lines.append(f'{r.config:<22} {r.steps:>5} {r.validations:>6} {r.s_per_step:>7.3f} '
                 f'{r.final_s:>8.1f} {r.full_steps:>9} {text.hms(r.projected_s):>10} '
                 f'{r.load_before:>4.2f}-{r.load_after:<4.2f}')
  lines.append('s/step includes the validations of the timed steps; projected = s/step x the '
               "config's steps + the final evaluation and export.")
  return '\n'.join(lines)
