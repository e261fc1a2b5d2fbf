"""The two reference conventions (SPEC section 1), as explicit options.

``distill`` is the Growing NCA TF Colab (2020); ``paper`` is the Adversarial Takeover PyTorch code
(2022). A model's convention travels with its weights: the manifest records it and
``CAModel(convention=...)`` carries it.
"""

import dataclasses

PADDINGS = ('zeros', 'circular')
SEEDS = ('all_channels', 'alpha_only')
COLOURS = ('premultiplied', 'straight')
RESIZES = ('thumbnail_lanczos', 'bilinear')


@dataclasses.dataclass(frozen=True)
class Convention:
  """How one reference system grows, draws and compares an organism.

  Attributes:
    name: 'distill' or 'paper' (or a custom name).
    padding: 'zeros' (perception zero-padded; 3x3 max-pool ignores cells outside the grid) or
      'circular' (a torus, for perception and every max-pool).
    seed: 'all_channels' (the seed cell has alpha and every hidden channel at 1) or 'alpha_only'.
    colours: 'premultiplied' (target RGB *= alpha) or 'straight' (RGBA / 255).
    fire_inclusive: True for `uniform <= fire_rate` (Distill), False for `<` (paper).
    target_size: side of the target image in cells.
    target_pad: cells of padding on each side of the target: the grid is
      `target_size + 2 * target_pad`.
    resize: 'thumbnail_lanczos' (PIL thumbnail of the 128 px emoji) or 'bilinear'.
  """
  name: str
  padding: str
  seed: str
  colours: str
  fire_inclusive: bool
  target_size: int
  target_pad: int
  resize: str

  def __post_init__(self):
    for field, allowed in (('padding', PADDINGS), ('seed', SEEDS), ('colours', COLOURS),
                           ('resize', RESIZES)):
      if getattr(self, field) not in allowed:
        raise ValueError(f'Convention {self.name!r}: {field}={getattr(self, field)!r}; '
                         f'expected one of {allowed}')

  @property
  def grid_size(self):
    """Side of the default grid: the padded target."""
    return self.target_size + 2 * self.target_pad


DISTILL = Convention(name='distill', padding='zeros', seed='all_channels',
                     colours='premultiplied', fire_inclusive=True, target_size=40,
                     target_pad=16, resize='thumbnail_lanczos')
PAPER = Convention(name='paper', padding='circular', seed='alpha_only', colours='straight',
                   fire_inclusive=False, target_size=40, target_pad=4, resize='bilinear')

CONVENTIONS = {c.name: c for c in (DISTILL, PAPER)}


def get_convention(convention):
  """Returns a `Convention` from a name or a `Convention`.

  Raises:
    ValueError: for an unknown name, listing the known ones.
  """
  if isinstance(convention, Convention):
    return convention
  try:
    return CONVENTIONS[convention]
  except (KeyError, TypeError):
    raise ValueError(f'unknown convention {convention!r}; expected one of '
                     f'{sorted(CONVENTIONS)}') from None
