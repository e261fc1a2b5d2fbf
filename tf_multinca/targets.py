"""Target images, prepared as each reference prepares them (SPEC section 1).

Distill: PIL `thumbnail((40, 40), LANCZOS)` of the 128 px emoji, / 255, RGB premultiplied by alpha.
Paper: bilinear resize of the RGBA PNG to 40x40 *without antialiasing*, / 255, straight (not
premultiplied). The paper's notebooks do `T.Resize((40, 40))` on a float tensor from
`read_image(..., RGB_ALPHA)`; torchvision of 2022 resized tensors with
`interpolate(mode='bilinear', align_corners=False)` and no antialiasing, so each output pixel
mixes only its 2x2 nearest source pixels. (PIL's BILINEAR would low-pass filter the 512 px
images first and give visibly different targets.)
"""

import os
import pathlib

import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError

from tf_multinca import errors
from tf_multinca import conventions as conv_lib
from tf_multinca import metrics
from tf_multinca import multi
from tf_multinca import rollout
from tf_multinca.pretrained.fetch import fetch
from tf_multinca.pretrained.manifest import UnknownEntryError
from tf_multinca.pretrained.manifest import load_manifest

# Variation selector 16 ("emoji presentation"): noto-emoji file names leave it out.
_VS16 = '\ufe0f'


class TargetError(errors.Error, ValueError):
  """A target that cannot be loaded; the message names the input and how to fix it."""


def emoji_code(emoji):
  """The noto-emoji file code of an emoji: '🦎' -> '1f98e', '👁️' -> '1f441'.

  Code points are joined by '_' as in noto-emoji's file names; U+FE0F is dropped.
  """
  return '_'.join(f'{ord(ch):x}' for ch in emoji if ch != _VS16)


def _looks_like_emoji(spec):
  # Emoji are short runs of symbols (keycaps start with an ASCII digit); paths have '/' or '.'.
  return (0 < len(spec) <= 16 and not any(ch in spec for ch in '/\\.')
          and any(ord(ch) >= 0x2000 for ch in spec))


def _resolve(spec):
  """(path to a PNG, description) for a manifest name, an emoji or a path."""
  if isinstance(spec, os.PathLike):
    return pathlib.Path(spec), str(spec)
  if not isinstance(spec, str):
    raise TargetError(f'target {spec!r}: expected a manifest name, a PNG path or an emoji '
                      f'string, got {type(spec).__name__}')
  manifest = load_manifest()
  name = spec
  if spec not in manifest and _looks_like_emoji(spec):
    name = f'noto/{emoji_code(spec)}'
    if name not in manifest:
      known = ' '.join(e.emoji for e in manifest.values()
                       if e.name.startswith('noto/') and e.emoji)
      raise TargetError(f'emoji {spec!r} ({name}) is not among the published 2019 noto-emoji '
                        f'targets ({known}); pass a PNG path instead')
  if name in manifest:
    entry = manifest[name]
    if entry.format != 'png':
      raise TargetError(f'{name} is a {entry.format} entry, not a target image; use one of the '
                        'png entries (`python -m tools.pretrained list`)')
    return fetch(entry), f'{spec} ({name})' if name != spec else spec
  path = pathlib.Path(spec).expanduser()
  if not path.exists():
    images = [e.name for e in manifest.values() if e.format == 'png']
    close = UnknownEntryError(spec, images).close
    hint = f' Did you mean {", ".join(close)}?' if close else ''
    raise TargetError(f'target {spec!r}: no such file, and not a manifest image name or a '
                      f'published emoji. Pass an existing PNG path, a manifest name such as '
                      f'paper/images/lizard, or an emoji such as \U0001f98e.{hint}')
  return path, spec


# A target is resized to 40 px; 16 Mpx (4096 x 4096) is far more than any target needs, and its
# RGBA pixels stay under 64 MB. Checked from the header, before anything is decoded.
MAX_PIXELS = 1 << 24


def _open_rgba(path, what):
  """The image at `path` as RGBA, refused if too large, without alpha, or fully transparent."""
  try:
    with Image.open(path) as im:
      w, h = im.size
      if w * h > MAX_PIXELS:
        raise TargetError(f'target {what}: {path} is {w}x{h} pixels; a target is resized to 40 '
                          f'px, so at most {MAX_PIXELS} pixels are read (scale it down first)')
      has_alpha = im.mode in ('RGBA', 'LA', 'PA', 'RGBa', 'La') or (
          im.mode in ('P', 'L', 'RGB') and 'transparency' in im.info)
      if not has_alpha:
        raise TargetError(f'target {what}: {path} has no alpha channel (mode {im.mode}); the '
                          "organism's shape is the target's alpha: save it as an RGBA PNG "
                          'with a transparent background')
      rgba = im.convert('RGBA')
  except TargetError:
    raise  # ours, already one message (not nested in the one below)
  except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
    # A directory, a text file named .png, a truncated PNG...
    raise TargetError(f'target {what}: {path} is not a readable image ({e}); pass a PNG '
                      'file') from None
  if rgba.getextrema()[3][1] == 0:
    raise TargetError(f'target {what}: {path} is fully transparent (alpha 0 everywhere): the '
                      'organism would be nothing; give the shape a non-zero alpha')
  return rgba


def prepare_target(image, convention='distill', size=None):
  """Resizes and normalises a PIL RGBA image as the convention's reference does.

  Args:
    image: `PIL.Image` (converted to RGBA).
    convention: 'distill' | 'paper' | a `Convention`.
    size: target side; None for the convention's `target_size` (40).

  Returns:
    `[H, W, 4]` float32 in [0, 1]. Paper: `H = W = size`. Distill: the thumbnail keeps the aspect
    ratio, so `max(H, W) = size` (square for square images, e.g. every emoji).
  """
  c = conv_lib.get_convention(convention)
  size = c.target_size if size is None else int(size)
  im = image.convert('RGBA')
  if c.resize == 'thumbnail_lanczos':
    im = im.copy()
    im.thumbnail((size, size), Image.LANCZOS)
    x = np.asarray(im, np.float32) / 255.0
  else:
    x = resize_bilinear(np.asarray(im), size) / 255.0
  x = np.clip(x, 0.0, 1.0)
  if c.colours == 'premultiplied':
    x[..., :3] *= x[..., 3:]
  return x


def _bilinear_taps(n_in, n_out):
  """Source indices (i0, i1) and weight of i1 for each output index (half-pixel centres)."""
  src = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
  i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
  i1 = np.minimum(i0 + 1, n_in - 1)
  return i0, i1, src - i0


def resize_bilinear(x, size):
  """Bilinear resize without antialiasing, as torch `interpolate(align_corners=False)`.

  Args:
    x: `[H, W, C]` array.
    size: output side `S` or `(S_h, S_w)`.

  Returns:
    `[S_h, S_w, C]` float32.
  """
  sh, sw = (size, size) if isinstance(size, int) else size
  x = np.asarray(x)
  r0, r1, rt = _bilinear_taps(x.shape[0], sh)
  c0, c1, ct = _bilinear_taps(x.shape[1], sw)
  # Only the source rows the output needs are converted to float64 (exactly as converting the
  # whole image first: the conversion is exact), so a large image costs no float64 copy.
  top, bottom = x[r0].astype(np.float64), x[r1].astype(np.float64)
  x = top * (1 - rt)[:, None, None] + bottom * rt[:, None, None]
  x = x[:, c0] * (1 - ct)[None, :, None] + x[:, c1] * ct[None, :, None]
  return x.astype(np.float32)


def load_target(spec, convention='distill', size=None):
  """Loads a target image.

  Args:
    spec: a manifest image name ('paper/images/lizard', 'noto/1f98e'), a PNG path, or an emoji
      ('🦎' -> the 2019 noto-emoji entry 'noto/1f98e').
    convention: 'distill' (thumbnail LANCZOS, premultiplied) | 'paper' (bilinear without
      antialiasing, straight) | a `Convention`.
    size: target side; None for the convention's (40).

  Returns:
    `[S, S, 4]` float32 RGBA in [0, 1] (Distill keeps a non-square image's aspect ratio:
    `[H, W, 4]`, `max(H, W) = S`).

  Raises:
    TargetError: a missing file, a file that is not an image, an unknown emoji, or a manifest
      entry that is not an image.
  """
  path, what = _resolve(spec)
  if not path.is_file():
    raise TargetError(f'target {what}: {path} is not a file; pass a PNG file')
  return prepare_target(_open_rgba(path, what), convention, size)


def build_target(spec, convention='paper', grid=None, original=None, fire_rate=None):
  """The one target builder: a `[grid, grid, 4]` float32 target for a rollout.

  Args:
    spec: a `load_target` spec (manifest image, PNG path, emoji), or 'self:N': the organism
      `original` itself, its mean `[RGB, alpha]` over 8 organisms after N steps (seed 0), for
      targets that were never published (the growing butterfly).
    convention: 'paper' | 'distill' | a `Convention`.
    grid: grid side; None for the convention's. The image side and its padding scale with it
      (paper: 40 + 2 x 4 on 48; distill: 40 + 2 x 16 on 72).
    original: the organism (a `CAModel`), for 'self:N'.
    fire_rate: its fire rate for 'self:N' (None: the model's).

  Returns:
    `[grid, grid, 4]` float32, the image centred (a non-square Distill thumbnail too).

  Raises:
    TargetError: a bad spec, or 'self:N' without an original.
  """
  conv = conv_lib.get_convention(convention)
  grid = int(grid or conv.grid_size)
  if isinstance(spec, str) and spec.startswith('self:'):
    if not spec[5:].isdigit():
      raise TargetError(f"target {spec!r}: 'self:N' needs an integer N (steps of growth)")
    if original is None:
      raise TargetError(f'target {spec!r} is the organism itself: it needs the original model')
    return _self_target(original, int(spec[5:]), grid, fire_rate)
  pad = int(round(grid * conv.target_pad / conv.grid_size))
  image = load_target(spec, conv, size=grid - 2 * pad)
  h, w = image.shape[:2]
  out = np.zeros([grid, grid, 4], np.float32)
  top, left = (grid - h) // 2, (grid - w) // 2
  out[top:top + h, left:left + w] = image
  return out


def cut_alpha(target, cut):
  """`target` with its cells of alpha below `cut` emptied (RGB and alpha 0).

  Args:
    target: `[H, W, 4]` float32, straight or premultiplied colours.
    cut: alpha threshold in [0, 1); 0 returns the target unchanged.

  Returns:
    `[H, W, 4]` float32.
  """
  target = np.asarray(target, np.float32)
  if not cut:
    return target
  return np.where(target[..., 3:] >= cut, target, 0.0).astype(np.float32)


def _self_target(original, steps, grid, fire_rate, seeds=8, seed=0):
  """The organism's own mean `[RGB, alpha]` after `steps` steps, on the multi layout."""
  x, _ = rollout.grow(multi.MultiNCA([original]), steps, batch=seeds, size=grid, seed=seed,
                      keep_every=0, fire_rate=fire_rate)
  return np.clip(metrics.rgba_view(x).numpy().mean(0), 0.0, 1.0).astype(np.float32)
