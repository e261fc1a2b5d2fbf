"""Rendering: states to RGB under each convention, tiling, zoom, strips, PNG and GIF (Pillow).

Images are NumPy arrays: float RGB in [0, 1] `[..., H, W, 3]` or uint8.
"""

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFont

from tf_multinca import conventions as conv_lib
from tf_multinca import fileio
from tf_multinca import layout

ORIGINAL_COLOUR = np.array([1.0, 0.55, 0.0], np.float32)   # orange
ADVERSARY_COLOUR = np.array([0.12, 0.47, 0.95], np.float32)  # blue
EXTRA_COLOURS = np.array([[0.2, 0.7, 0.2], [0.8, 0.2, 0.8], [0.5, 0.5, 0.5]], np.float32)


def _np(x):
  return x.numpy() if hasattr(x, 'numpy') else np.asarray(x)


def rgba_to_rgb(rgba, convention='distill'):
  """`[..., 4]` RGBA (RGB as the convention stores it) -> `[..., 3]` RGB in [0, 1] on white.

  distill (premultiplied): `1 - clip(a, 0, 1) + rgb`; paper (straight): `rgb * a + (1 - a)`.
  """
  c = conv_lib.get_convention(convention)
  rgba = _np(rgba).astype(np.float32)
  rgb, a = rgba[..., :3], rgba[..., 3:4]
  if c.colours == 'premultiplied':
    out = 1.0 - np.clip(a, 0.0, 1.0) + rgb
  else:
    out = rgb * a + (1.0 - a)
  return np.clip(out, 0.0, 1.0)


def is_multi(x, multi=None):
  """Whether state `x` is in the multi layout: `multi` when given; else by its channels (a
  k = 1 multi state has 16 channels like a single one: pass `multi=True` for it)."""
  return bool(multi) if multi is not None else _np(x).shape[-1] != layout.CHANNEL_N


def state_to_rgb(x, convention='distill', multi=None):
  """A single (16) or multi (15 + k) state `[..., C]` -> RGB `[..., 3]` in [0, 1].

  A multi state is drawn with the sum of its alphas, as every rule perceives it. `multi`: the
  layout (None: guessed from the channels, see `is_multi`).
  """
  x = _np(x)
  if not is_multi(x, multi):
    rgba = x[..., :4]
  else:
    alpha = x[..., layout.MULTI_ALPHA0:].sum(-1, keepdims=True)
    rgba = np.concatenate([x[..., layout.RGB], alpha], -1)
  return rgba_to_rgb(rgba, convention)


def cell_mask_rgb(x, threshold=0.1):
  """Cell-type mask of a multi state: original orange, adversary blue, empty white.

  Args:
    x: `[..., H, W, 15 + k]`.

  Returns:
    `[..., H, W, 3]` float in [0, 1].
  """
  x = _np(x)
  alphas = x[..., layout.MULTI_ALPHA0:]
  k = alphas.shape[-1]
  colours = np.concatenate([ORIGINAL_COLOUR[None], ADVERSARY_COLOUR[None], EXTRA_COLOURS])[:k]
  which = alphas.argmax(-1)
  alive = alphas.max(-1) > threshold
  out = np.where(alive[..., None], colours[which], 1.0)
  return out.astype(np.float32)


def zoom(img, factor):
  """Nearest-neighbour zoom of `[H, W, C]` by an integer factor."""
  img = _np(img)
  return np.repeat(np.repeat(img, factor, axis=-3), factor, axis=-2)


def tile(images, cols=None, pad=1, fill=1.0):
  """Tiles `[N, H, W, C]` images into one grid `[rows*(H+pad)-pad, cols*(W+pad)-pad, C]`."""
  images = _np(images)
  n, h, w, c = images.shape
  cols = cols or int(np.ceil(np.sqrt(n)))
  rows = int(np.ceil(n / cols))
  out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad, c), fill, images.dtype)
  for i in range(n):
    r, q = divmod(i, cols)
    out[r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = images[i]
  return out


def to_uint8(img):
  """Float [0, 1] -> uint8 (uint8 passes through)."""
  img = _np(img)
  if img.dtype == np.uint8:
    return img
  return (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_png(img, path):
  """Writes `[H, W, 3]` (float [0, 1] or uint8) as a PNG; returns the path."""
  im = Image.fromarray(to_uint8(img))
  return fileio.write_file(path, lambda p: im.save(p, format='PNG'), suffix='.png')


def save_gif(frames, path, duration_ms=40, loop=0):
  """Writes frames `[T, H, W, 3]` (or a list) as an animated GIF; returns the path."""
  frames = [Image.fromarray(to_uint8(f)) for f in frames]
  if not frames:
    raise ValueError('save_gif needs at least one frame')
  return fileio.write_file(path, lambda p: frames[0].save(
      p, format='GIF', save_all=True, append_images=frames[1:], duration=duration_ms,
      loop=loop, optimize=False), suffix='.gif')


FONT_SIZE = 13  # Pillow's bundled scalable font: readable at the strips' zoom


def _font(size=FONT_SIZE):
  return ImageFont.load_default(size=size)


def evolution_strip(states, convention='paper', zoom_factor=4, with_mask=True, pad=2,
                    steps=None, multi=None, marks=None, names=None):
  """The paper's fig. 12 / 14 strip: the organism over time, the cell mask below it.

  Args:
    states: `[T, H, W, C]` states of one sample at chosen steps (C = 16 or 15 + k).
    steps: the `T` steps of the frames: each frame gets a 't = N' label above it (None: no
      labels).
    multi: the states' layout (None: guessed from the channels, see `is_multi`).
    marks: {step: text} written under a frame's label ('injected', 'damaged').
    names: the rules' names for the mask's key (default 'original', 'adversary', 'rule 2',
      ...); the key is drawn under a strip with a mask.

  Returns:
    `[rows * H * zoom (+ label band, + key band), T * W * zoom, 3]` float image (rows = 2
    with the mask).
  """
  states = _np(states)
  multi = is_multi(states, multi)
  rows = [state_to_rgb(states, convention, multi)]
  masked = with_mask and multi
  if masked:
    rows.append(cell_mask_rgb(states))
  t = states.shape[0]
  images = np.concatenate(rows, 0)  # row-major: all organisms, then all masks
  strip = tile(zoom(images, zoom_factor), cols=t, pad=pad)
  if steps is not None:
    if len(steps) != t:
      raise ValueError(f'{len(steps)} step labels for {t} frames')
    marks = marks or {}
    labels = [f't = {int(s)}' + (f'\n{marks[int(s)]}' if int(s) in marks else '') for s in steps]
    strip = label_columns(strip, labels, states.shape[2] * zoom_factor, pad,
                          band=34 if marks else 18)
  if masked:
    k = states.shape[-1] - 15
    names = list(names or ['original', 'adversary'] + [f'rule {i}' for i in range(2, k)])[:k]
    strip = mask_key(strip, names)
  return strip


def mask_key(img, names, band=20):
  """Adds a white band under `img` with the mask's key: each rule's colour and name."""
  img = to_uint8(img)
  out = Image.new('RGB', (img.shape[1], img.shape[0] + band), 'white')
  out.paste(Image.fromarray(img), (0, 0))
  draw = ImageDraw.Draw(out)
  font = _font()
  colours = np.concatenate([ORIGINAL_COLOUR[None], ADVERSARY_COLOUR[None], EXTRA_COLOURS])
  x, y = 4, img.shape[0] + 3
  for i, name in enumerate(names):
    c = tuple(int(v * 255) for v in colours[min(i, len(colours) - 1)])
    draw.rectangle([x, y + 2, x + 11, y + 13], fill=c)
    draw.text((x + 15, y), name, fill='black', font=font)
    x += 15 + int(draw.textlength(name, font=font)) + 14
  return np.asarray(out, np.float32) / 255.0


def label_columns(img, labels, width, pad=2, band=18):
  """Adds a white band above `img` with `labels[i]` (one or more lines) centred over column
  `i` (of `width` pixels, `pad` apart). Drawn with Pillow's bundled font, so it works offline.

  Returns:
    `[band + H, W, 3]` float image in [0, 1].
  """
  img = to_uint8(img)
  out = Image.new('RGB', (img.shape[1], img.shape[0] + band), 'white')
  out.paste(Image.fromarray(img), (0, band))
  draw = ImageDraw.Draw(out)
  font = _font()
  for i, text in enumerate(labels):
    for j, line in enumerate(text.split('\n')):
      left, _, right, _ = draw.textbbox((0, 0), line, font=font)
      x = i * (width + pad) + (width - (right - left)) // 2
      draw.text((max(x, 0), 1 + 16 * j), line, fill='black' if j == 0 else (200, 30, 30),
                font=font)
  return np.asarray(out, np.float32) / 255.0


def title(img, text, band=18):
  """Adds a white band with `text` above `img` (float or uint8 `[H, W, 3]`); returns float."""
  img = to_uint8(img)
  out = Image.new('RGB', (img.shape[1], img.shape[0] + band), 'white')
  out.paste(Image.fromarray(img), (0, band))
  ImageDraw.Draw(out).text((2, 1), text, fill='black', font=_font())
  return np.asarray(out, np.float32) / 255.0


def to_pil(img):
  """`[H, W, 3]` float [0, 1] or uint8 -> a PIL image (shows inline in notebooks)."""
  return Image.fromarray(to_uint8(img))
