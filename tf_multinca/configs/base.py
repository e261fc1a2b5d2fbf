"""The configuration of one training run: a frozen dataclass, every field documented.

One `TrainConfig` describes both kinds of run, so both go through one loop:
`kind='adversary'` trains rule 1 of a Multiple NCA against a frozen original (the paper);
`kind='nca'` trains a single NCA from its seed (Distill). Fields that do not apply to a kind are
ignored by it. Overrides from the command line are `key=value` strings (`apply_overrides`).
"""

import dataclasses
import math
import typing

from tf_multinca import errors
from tf_multinca import injection as inj
from tf_multinca import registry

KINDS = ('adversary', 'nca')
INITS = ('random', 'copy')
REPLACE_POLICIES = ('worst', 'expired')
WEIGHT_SCHEDULES = ('window', 'sigmoid', 'exponential')
LR_SCHEDULES = ('constant', 'piecewise', 'step_decay')
CONVENTIONS = ('paper', 'distill')
PRECISIONS = ('float32', 'mixed_bfloat16')
L3_DISTANCES = ('rms', 'norm')

# Fields that may change when a run resumes in the same workdir: they do not change what is
# trained, only how long and how it is reported.
RESUMABLE_CHANGES = frozenset({
    'steps', 'log_every', 'summary_every', 'image_every', 'checkpoint_every', 'keep_checkpoints',
    'eval_seeds', 'eval_steps', 'eval_seed', 'compare_with', 'register', 'description',
    'test_seeds',
    'eval_every', 'keep_best',
    'debug_nan_step',  # a removed test hook: older config.json files still have it
    # A lower lr resumes a diverged run (the schedule's values only: the boundaries keep steps).
    'lr', 'lr_values'})


class ConfigError(errors.Error, ValueError):
  """A config that cannot run: names the field and how to fix it."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """One training run. See the comment on each field."""
  # --- What is trained.
  name: str = ''  # The config's name (set by the registry; used in logs and hparams).
  description: str = ''  # One line: which experiment of which paper this is.
  kind: str = 'adversary'  # 'adversary': train rule 1 against a frozen rule 0; 'nca': one NCA.
  original: str = 'paper/lizard/persist'  # adversary: the frozen organism: a manifest name, a
  # registered name (registry) or a weight file.
  target: str = 'paper/images/lizard_red'  # Target image: manifest image name, PNG path, emoji,
  # or 'self:N' (adversary: the original's own mean RGBA after N steps, for unpublished targets).
  target_alpha_cut: float = 0.0  # Training only: target cells of alpha below this are emptied
  # for loss and validations, not the final evaluation (a grown 'self:N' has a faint halo). 0 = off.
  convention: str = 'paper'  # 'paper' (48x48 torus, straight colours) or 'distill' (72x72).
  grid_size: int = 0  # Grid side in cells; 0 = the convention's (48 paper, 72 distill).
  fire_rate: float = 0.5  # Probability that a cell updates in a step (both rules).
  precision: str = 'float32'  # 'float32' (exact) or 'mixed_bfloat16' (the step's rule matmuls;
  # the rest float32): 0.95 s a step against float32's 0.73 on this 2-core CPU; no config uses it.

  # --- Adversary: initialisation and injection.
  adversary_init: str = 'copy'  # 'random' (Glorot first layer, zero last), 'copy' (the original's
  # weights: fig. 15) or 'from:NAME' (not in the paper: a `hub.load` name, e.g. results/lizard_red).
  injection: str = 'square:2'  # How adversary cells are injected: square:S, spray:P, spray:P%.
  inject_min: int = 60  # Fresh samples are grown with the original for a number of steps drawn
  inject_max: int = 60  # uniformly in [inject_min, inject_max], then injected (paper: 60).
  pretrain_steps: int = 0  # Not in the paper: the first N steps hand every grown cell to the
  # adversary (it learns to draw first); then the pool is refilled with `injection`. 0 = none.

  # --- Loss: sum_n l1(n) L_target(n) + l2(n) N_old(n) + l3 d(w_adv, w_orig), n the age; each
  # weight a scale times a shape over n, normalised to an average over the steps it is non-zero.
  l1: float = 1.0  # Scale of the target loss (mean squared error of [RGB, sum A] to the target).
  l1_schedule: str = 'window'  # 'window' (1 on [start, end]), 'sigmoid' or 'exponential'.
  l1_start: int = 64  # First age (steps since injection) with weight (sigmoid: its midpoint).
  l1_end: int = -1  # Last age with weight; -1 = no end (persistent behaviour).
  l1_width: float = 8.0  # sigmoid / exponential: the scale in steps of the rise.
  l2: float = 1e-3  # Scale of N_old, the sum of the original's alpha over the grid.
  l2_schedule: str = 'window'  # As l1_schedule.
  l2_start: int = 64  # As l1_start.
  l2_end: int = -1  # As l1_end.
  l2_width: float = 8.0  # As l1_width.
  l_outside: float = 0.0  # Not in the paper: scale of the summed alpha of all rules outside
  # the target's shape (target alpha == 0), on l2's schedule. Penalises overgrowth (0 = off).
  l3: float = 0.0  # Scale of d(w_adv, w_orig), fig. 15's perturbation term.
  l3_distance: str = 'rms'  # d: 'rms' sqrt(mean((w_adv - w_orig)^2)) (SPEC section 3) or 'norm',
  # the paper's |dw|_2 (~91x the RMS). The reported |dw| is the RMS either way (fig. 15's size).

  # --- Rollouts and the sample pool.
  batch_size: int = 8  # Samples per train step.
  rollout_min: int = 32  # Steps rolled out per train step, drawn uniformly in
  rollout_max: int = 32  # [rollout_min, rollout_max] (Distill: 64..95).
  pool_size: int = 64  # Samples kept on the device between steps; 0 = no pool (fresh batches).
  replace_worst: int = 1  # Samples of each batch replaced by fresh ones (the highest loss first).
  replace_policy: str = 'worst'  # 'worst': replace_worst samples every step (Distill's pool);
  # 'expired' (adversary): only those past max_age, so the long run is trained as the takeover.
  max_age: int = 600  # adversary: samples older than this (since injection) are replaced first.
  damage_n: int = 0  # Samples of each batch (the lowest loss) that get a circular damage.
  damage_min_age: int = 0  # Damage only samples at least this old (adversary: after the takeover).
  outlier_factor: float = 5.0  # Samples whose loss exceeds this times the batch mean are left
  # out of the gradient; 0 disables.

  # --- Optimiser.
  lr: float = 2e-3  # Adam's initial learning rate.
  lr_schedule: str = 'piecewise'  # 'constant', 'piecewise' (lr_boundaries / lr_values) or
  # 'step_decay' (lr * lr_decay_rate ** (step // lr_decay_steps)).
  lr_boundaries: typing.Tuple[int, ...] = (2000,)  # piecewise: steps where the lr changes.
  lr_values: typing.Tuple[float, ...] = (2e-3, 2e-4)  # piecewise: one more value than
  # boundaries; the first should equal lr.
  lr_decay_rate: float = 0.5  # step_decay: the factor.
  lr_decay_steps: int = 1000  # step_decay: the period in steps.
  grad_norm: bool = True  # Normalise each variable's gradient to unit L2 norm (Distill).
  weight_average: float = 0.0  # Not in the paper: per-step decay of an EMA of the rule's weights
  # (0 = off); from weight_average_from the validations, evaluation and export take the average.
  weight_average_from: int = 0  # The step the average starts at (a copy of the weights then).
  steps: int = 2000  # Train steps of the whole run.
  stop_loss: float = 0.0  # Stop once a validation's score (keep_best; needs eval_every) is below
  # this (fig. 15: 0.01); 0 disables. Not the training loss: ages below l1_start have a zero loss.
  stop_complete: float = 1.0  # Adversary: stop_loss also needs no original cell left in this
  # share of the seeds (the score barely sees one), and keep_best prefers such validations.
  seed: int = 0  # Seed of the run's tf.random.Generator (pool, injections, fire masks).

  # --- Checkpoints, logs and evaluation.
  log_every: int = 10  # A progress line (loss, s/step, ETA) every this many steps.
  summary_every: int = 10  # TensorBoard scalars every this many steps.
  image_every: int = 100  # TensorBoard image strips of the pool every this many steps.
  checkpoint_every: int = 50  # A checkpoint every this many steps (and at the end).
  keep_checkpoints: int = 3  # Checkpoints kept by the CheckpointManager.
  eval_seeds: int = 8  # Final evaluation: fresh seeds.
  eval_steps: int = 500  # Final evaluation: steps after injection (adversary) or from the seed
  # (nca).
  eval_seed: int = 1234  # Final evaluation: seed of its generator, the development seeds that
  # recipes are compared on. The held-out test set (zoo.TEST_SEED) is never read for tuning.
  eval_every: int = 0  # Validation every this many steps (0 = none): the final evaluation's
  # protocol on seeds eval_seed + 1 (the final ones stay unseen), logged as valid/*; see keep_best.
  keep_best: bool = True  # With eval_every: export and evaluate the lowest-scoring validated
  # weights; the score: the last step's MSE (nca), l1 MSE + l2 N_old in original cells (adversary).
  compare_with: str = ''  # A published adversary evaluated the same way at the end ('' none).
  test_seeds: int = 128  # With compare_with: the verdict at the end, ours and the published
  # on this many organisms of the held-out test set (zoo.TEST_SEED; 0: none). Read, never tuned on.
  register: str = ''  # nca: register the trained model under this name in the local manifest.

  def replace(self, **changes):
    return dataclasses.replace(self, **changes)

  def to_dict(self):
    return dataclasses.asdict(self)


def field_types():
  """{field name: type} of `TrainConfig`."""
  return {f.name: f.type for f in dataclasses.fields(TrainConfig)}


def _parse_bool(text):
  low = text.strip().lower()
  if low in ('1', 'true', 'yes', 'on'):
    return True
  if low in ('0', 'false', 'no', 'off'):
    return False
  raise ValueError(f'{text!r} is not a boolean (true/false)')


def parse_value(name, text):
  """Parses the text of an override for field `name` into the field's type.

  Raises:
    ConfigError: an unknown field or a value of the wrong type.
  """
  types = field_types()
  if name not in types:
    raise ConfigError(f'unknown config field {name!r}; fields are: {", ".join(sorted(types))}')
  t = types[name]
  try:
    if t is bool:
      return _parse_bool(text)
    if t is int:
      return int(text)
    if t is float:
      return float(text)
    if t is str:
      return text
    item = typing.get_args(t)[0]
    parts = [p for p in text.replace(' ', '').split(',') if p]
    return tuple(item(p) for p in parts)
  except ValueError as e:
    raise ConfigError(f'config field {name}: cannot parse {text!r} as {getattr(t, "__name__", t)}'
                      f' ({e})') from None


def apply_overrides(config, overrides):
  """Applies `key=value` strings to a config, then validates it.

  Raises:
    ConfigError: a malformed override, an unknown field, a bad value.
  """
  changes = {}
  for item in overrides or ():
    if '=' not in item:
      raise ConfigError(f'override {item!r} is not key=value (e.g. --set=lr=1e-3)')
    key, value = item.split('=', 1)
    changes[key.strip()] = parse_value(key.strip(), value)
  # `lr` and the piecewise `lr_values` are one schedule: `lr` alone scales every value, and
  # `lr_values` alone sets `lr` to its first.
  if config.lr_schedule == 'piecewise' and changes.get('lr_schedule', 'piecewise') == 'piecewise':
    if 'lr' in changes and 'lr_values' not in changes:
      scale = changes['lr'] / config.lr
      changes['lr_values'] = tuple(v * scale for v in config.lr_values)
    elif 'lr_values' in changes and 'lr' not in changes and changes['lr_values']:
      changes['lr'] = changes['lr_values'][0]
  config = dataclasses.replace(config, **changes)
  validate(config)
  return config


def _check(ok, field, message):
  if not ok:
    raise ConfigError(f'config field {field}: {message}')


def validate(c):
  """Checks every field's range and the combinations.

  Raises:
    ConfigError: naming the field and the allowed values.
  """
  _check(c.kind in KINDS, 'kind', f'{c.kind!r}; expected one of {KINDS}')
  _check(c.convention in CONVENTIONS, 'convention', f'{c.convention!r}; expected one of '
         f'{CONVENTIONS}')
  _check(bool(c.target), 'target', 'must name a target image (manifest name, PNG or emoji)')
  if c.target.startswith('self:'):
    _check(c.kind == 'adversary' and c.target[5:].isdigit(), 'target',
           f"{c.target!r}: 'self:N' (the organism itself after N steps) needs an adversary "
           'run and an integer N')
  _check(0.0 <= c.target_alpha_cut < 1.0, 'target_alpha_cut',
         f'{c.target_alpha_cut}; expected in [0, 1) (0: the target whole)')
  _check(c.precision in PRECISIONS, 'precision', f'{c.precision!r}; expected one of '
         f'{PRECISIONS}')
  _check(c.grid_size == 0 or c.grid_size >= 8, 'grid_size', f'{c.grid_size}; 0 or >= 8')
  _check(0.0 < c.fire_rate <= 1.0, 'fire_rate', f'{c.fire_rate}; expected in (0, 1]')
  if c.kind == 'adversary':
    _check(bool(c.original), 'original', 'an adversary needs the original organism')
    _check(c.adversary_init in INITS or (c.adversary_init.startswith('from:')
                                         and len(c.adversary_init) > 5), 'adversary_init',
           f'{c.adversary_init!r}; expected one of {INITS} or from:NAME (a model name)')
    try:
      spec = inj.parse_injection(c.injection)
    except inj.InjectionError as e:
      raise ConfigError(f'config field injection: {e}') from None
    _check(spec['kind'] in ('square', 'spray', 'checkerboard'), 'injection', 'unsupported kind')
    _check(c.pretrain_steps == 0 or 0 < c.pretrain_steps < c.steps, 'pretrain_steps',
           f'{c.pretrain_steps}; expected in [0, steps ({c.steps}))')
    _check(0 <= c.inject_min <= c.inject_max, 'inject_min',
           f'need 0 <= inject_min ({c.inject_min}) <= inject_max ({c.inject_max})')
  for p in ('l1', 'l2'):
    _check(getattr(c, f'{p}_schedule') in WEIGHT_SCHEDULES, f'{p}_schedule',
           f'{getattr(c, p + "_schedule")!r}; expected one of {WEIGHT_SCHEDULES}')
    _check(getattr(c, p) >= 0, p, 'must be >= 0')
    _check(getattr(c, f'{p}_start') >= 0, f'{p}_start', 'must be >= 0')
    end = getattr(c, f'{p}_end')
    _check(end == -1 or end >= getattr(c, f'{p}_start'), f'{p}_end',
           f'{end}; -1 (no end) or >= {p}_start')
    _check(getattr(c, f'{p}_width') > 0, f'{p}_width', 'must be > 0')
  _check(c.l3 >= 0, 'l3', 'must be >= 0')
  _check(c.l3_distance in L3_DISTANCES, 'l3_distance',
         f'{c.l3_distance!r}; expected one of {", ".join(L3_DISTANCES)}')
  _check(c.l_outside >= 0, 'l_outside', 'must be >= 0')
  _check(c.batch_size >= 1, 'batch_size', 'must be >= 1')
  _check(1 <= c.rollout_min <= c.rollout_max, 'rollout_min',
         f'need 1 <= rollout_min ({c.rollout_min}) <= rollout_max ({c.rollout_max})')
  _check(c.pool_size == 0 or c.pool_size >= c.batch_size, 'pool_size',
         f'{c.pool_size}; 0 (no pool) or >= batch_size ({c.batch_size})')
  _check(0 <= c.replace_worst <= c.batch_size, 'replace_worst',
         f'{c.replace_worst}; expected in [0, batch_size]')
  _check(c.max_age >= 1, 'max_age', 'must be >= 1')
  _check(c.replace_policy in REPLACE_POLICIES, 'replace_policy',
         f'{c.replace_policy!r}; expected one of {REPLACE_POLICIES}')
  _check(c.replace_policy == 'worst' or c.kind == 'adversary', 'replace_policy',
         "'expired' needs an adversary run (a sample's age counts from its injection)")
  _check(c.damage_min_age >= 0, 'damage_min_age', 'must be >= 0 (0: any sample)')
  _check(0 <= c.damage_n + c.replace_worst <= c.batch_size, 'damage_n',
         f'damage_n + replace_worst must be <= batch_size ({c.batch_size})')
  _check(c.outlier_factor == 0 or c.outlier_factor > 1, 'outlier_factor', '0 or > 1')
  _check(c.lr > 0, 'lr', 'must be > 0')
  _check(c.lr_schedule in LR_SCHEDULES, 'lr_schedule',
         f'{c.lr_schedule!r}; expected one of {LR_SCHEDULES}')
  if c.lr_schedule == 'piecewise':
    _check(len(c.lr_values) == len(c.lr_boundaries) + 1, 'lr_values',
           f'{len(c.lr_values)} values for {len(c.lr_boundaries)} boundaries; need one more '
           'value than boundaries')
    _check(list(c.lr_boundaries) == sorted(set(c.lr_boundaries)), 'lr_boundaries',
           'must be strictly increasing')
    _check(all(v > 0 for v in c.lr_values), 'lr_values', 'must be > 0')
    _check(math.isclose(c.lr, c.lr_values[0], rel_tol=1e-6), 'lr',
           f'{c.lr} disagrees with the schedule\'s first value lr_values[0] = {c.lr_values[0]}; '
           'pass --lr alone (it scales the whole schedule) or lr_values alone')
  _check(0 < c.lr_decay_rate <= 1, 'lr_decay_rate', 'must be in (0, 1]')
  _check(c.lr_decay_steps >= 1, 'lr_decay_steps', 'must be >= 1')
  _check(c.steps >= 1, 'steps', 'must be >= 1')
  _check(0 <= c.weight_average < 1, 'weight_average',
         f'{c.weight_average}; expected a decay in [0, 1), e.g. 0.998 (0: off)')
  _check(0 <= c.weight_average_from < c.steps, 'weight_average_from',
         f'{c.weight_average_from}; expected in [0, steps ({c.steps})) for the average to start')
  _check(c.stop_loss >= 0, 'stop_loss', 'must be >= 0 (0 disables)')
  _check(0 <= c.stop_complete <= 1, 'stop_complete',
         f'{c.stop_complete}; expected a share in [0, 1]')
  _check(not c.stop_loss or c.eval_every, 'stop_loss',
         'is read on the validations: set eval_every > 0 too, or stop_loss=0')
  for f in ('log_every', 'summary_every', 'image_every', 'checkpoint_every', 'keep_checkpoints',
            'eval_seeds'):
    _check(getattr(c, f) >= 1, f, 'must be >= 1')
  _check(c.eval_steps >= 0, 'eval_steps', 'must be >= 0')
  _check(c.test_seeds >= 0, 'test_seeds', 'must be >= 0 (0: no verdict on the test set)')
  _check(c.eval_every >= 0, 'eval_every', 'must be >= 0 (0: no validation during the run)')
  _check(c.kind == 'nca' or not c.register, 'register', 'only an nca run can be registered')
  if c.register:
    try:
      registry.check_name(c.register)
    except ValueError as e:
      raise ConfigError(f'config field register: {e}') from None
  return c
