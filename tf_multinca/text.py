"""Human-readable figures for logs and reports (one formatter per kind of figure)."""

import math


def hms(seconds):
  """'H:MM:SS' of a duration in seconds; '-' for None (not measured), '?' if not finite."""
  if seconds is None:
    return '-'
  if not math.isfinite(seconds):
    return '?'
  seconds = int(round(seconds))
  return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


def size(nbytes):
  """'512 B', '3.0 KiB', '1.2 MiB', '45.6 GiB', '2.0 TiB' of a number of bytes; '?' for None."""
  if nbytes is None:
    return '?'
  value, unit = float(nbytes), 'B'
  for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
    if abs(value) < 1024 or unit == 'TiB':
      break
    value /= 1024
  return f'{int(value)} B' if unit == 'B' else f'{value:.1f} {unit}'
