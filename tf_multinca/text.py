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
