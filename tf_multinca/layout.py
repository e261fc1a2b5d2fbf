"""The channel layouts, written down once.

Single NCA state ``[B, H, W, 16]`` (both references)::

    0..2   RGB
    3      alpha (a cell is mature when alpha > 0.1)
    4..15  hidden

Multiple NCA state ``[B, H, W, 15 + k]`` (the paper, k rules)::

    0..2      RGB
    3..14     hidden (the single layout's 4..15)
    15 + i    alpha of rule i (rule 0 = the original organism, rule 1 = the adversary)

Every rule of a Multiple NCA perceives a single-layout view ``[RGB, sum_i A_i, hidden]``.
Everything in the package indexes channels through the names below.
"""

CHANNEL_N = 16  # single NCA channels
RGB = slice(0, 3)
ALPHA = 3
RGBA = slice(0, 4)
HIDDEN = slice(4, CHANNEL_N)
HIDDEN_N = CHANNEL_N - 4

PERCEPTION_KERNELS = 3  # identity, Kx, Ky
HIDDEN_UNITS = 128


def perception_n(channel_n=CHANNEL_N):
  """Perception channels: 3 per state channel, ordered ``3 * c + k``."""
  return PERCEPTION_KERNELS * channel_n


# Multiple NCA layout.
MULTI_HIDDEN = slice(3, 3 + HIDDEN_N)
MULTI_ALPHA0 = 3 + HIDDEN_N  # 15


def multi_channels(k):
  """State channels of a Multiple NCA with ``k`` rules: ``15 + k``."""
  if k < 1:
    raise ValueError(f'a Multiple NCA needs at least one rule, got k={k}')
  return MULTI_ALPHA0 + k


def multi_alpha(i):
  """Index of rule ``i``'s alpha in the multi layout."""
  return MULTI_ALPHA0 + i
