"""The model hub: one `load` for every kind of model name, and one `load_pairing`.

    ca = hub.load('paper/lizard/persist')          # a published manifest name
    ca = hub.load('results/lizard_red')            # our trained adversary (the results zoo)
    ca = hub.load('local/my_lizard')               # a locally registered model
    ca = hub.load('runs/lizard_red')               # a training workdir (its exported weights)
    ca = hub.load('x/adversary.weights.h5')        # our weight file (convention beside it)
    ca = hub.load('x/lizard.pt')                   # a published format: .pt, WebGL .json, ckpt
    pair = hub.load_pairing('lizard_red')          # short name, manifest adversary or results/

SavedModels are never loaded from a name or path: loading one runs its graph, which can do
anything (write files, ...). Our exports keep their weights in `.weights.h5` with a JSON sidecar
(`weights_file`), and a directory resolves through those. Every reader here reads data only.
"""

import dataclasses
import os
import pathlib

import numpy as np

from tf_multinca import errors
from tf_multinca import injection as inj
from tf_multinca import model as model_lib
from tf_multinca import pretrained
from tf_multinca import registry
from tf_multinca import targets
from tf_multinca import weights_file
from tf_multinca import zoo

# Short names of the paper's published pairings (fig. 12 and 14), for the command line.
PAIRINGS = {
    'lizard_red': 'paper/lizard/virus/lizard_persist_to_red_squareside_2',
    'lizard_no_tail': 'paper/lizard/virus/lizard_persist_to_no_tail_squareside_2',
    'lizard_blue': 'paper/lizard/virus/lizard_persist_to_blue_squareside_2',
    'lizard_red_spray': 'paper/lizard/virus/lizard_persist_to_red_virusrate_10%',
    'bug_to_butterfly': 'paper/bug/virus/bug_persist_to_butterfly_squareside_2',
    'lizard_grow_to_persist': 'paper/lizard/virus/lizard_growing_to_persist_squareside_3',
    'butterfly_grow_to_persist': 'paper/butterfly/virus/butterfly_growing_to_persist_virusrate_3%',
    'firework_grow_to_persist': 'paper/firework/virus/firework_growing_to_persist_virusrate_50%',
}
# The trained weights inside a training workdir, adversary first.
WORKDIR_WEIGHTS = ('export/adversary.weights.h5', 'export/model.weights.h5')


class HubError(errors.Error, ValueError):
  """A name that resolves to nothing loadable, or contradictory arguments."""


def _workdir_weights(path):
  for rel in WORKDIR_WEIGHTS:
    if (path / rel).is_file():
      return path / rel
  return None


def load(name, convention=None, **model_kwargs):
  """A `CAModel` from any model name or weight path (see the module docstring for the order).

  Args:
    name: a results name, a registered name, a training workdir, a `.weights.h5`, a published
      manifest name or a published-format file.
    convention: 'paper' | 'distill'; None for the one recorded with the weights (a
      `.weights.h5` without its sidecar needs one).

  Raises:
    errors.Error: nothing of that name, or a file the readers refuse (the message says which).
  """
  text = os.fspath(name)
  if zoo.is_result_name(text):
    return zoo.load(text, convention, **model_kwargs)
  entry = registry.lookup(text)
  if entry is not None:
    return _load_path(pathlib.Path(entry['weights']), convention or entry.get('convention'),
                      **model_kwargs)
  path = pathlib.Path(text).expanduser()
  if path.exists():
    return _load_path(path, convention, **model_kwargs)
  return pretrained.load(text, convention, **model_kwargs)


def _load_path(path, convention, **model_kwargs):
  if path.is_dir():
    weights = _workdir_weights(path)
    if weights is not None:
      return weights_file.load(weights, convention, **model_kwargs)
    if (path / 'saved_model.pb').exists() or (path / 'export' / 'saved_model').is_dir():
      raise HubError(
          f'{path} holds a SavedModel but no exported .weights.h5; SavedModels are not loaded '
          '(loading one runs its graph). Pass the .weights.h5 written beside it')
  if path.name.endswith(weights_file.SUFFIX):
    return weights_file.load(path, convention, **model_kwargs)
  return pretrained.load(path, convention, **model_kwargs)


def describe(name):
  """{'convention', 'role', 'target', 'organism'} recorded for a model name, or {}."""
  text = os.fspath(name)
  if zoo.is_result_name(text):
    e = zoo.get(text)
    return {'convention': e.record.convention, 'role': 'adversary', 'target': e.target,
            'organism': e.original}
  entry = registry.lookup(text)
  if entry is not None:
    return {k: entry.get(k) for k in ('convention', 'role', 'target', 'organism')}
  try:
    e = pretrained.get(text)
  except (KeyError, ValueError, TypeError):
    return {}
  return {'convention': e.convention, 'role': e.role, 'target': e.target,
          'organism': e.organism}


def pairing_injection(name):
  """The injection a pairing's adversary was trained for (a `PAIRINGS` short name, a published
  adversary, or results/<experiment>), as recorded, without loading a model; None if none."""
  text = os.fspath(name)
  if zoo.is_result_name(text):
    return zoo.get(text).record.config['injection']
  try:
    return pretrained.get(PAIRINGS.get(text, text)).injection
  except (KeyError, ValueError, TypeError):
    return None


@dataclasses.dataclass
class Pairing:
  """An original organism, an adversary, how it is injected, and the target.

  Attributes:
    original: `CAModel` (rule 0).
    adversary: `CAModel` (rule 1), or None for a control (the organism alone).
    injection: the parsed injection spec (None for a control).
    target: the target spec ('paper/images/lizard_red', 'self:60', a PNG, ...) or None.
    target_array: `[grid, grid, 4]` float32 padded target, or None.
    original_name, adversary_name: the names they were loaded from.
    notes: provenance notes of a published adversary, or None.
  """
  original: model_lib.CAModel
  adversary: model_lib.CAModel | None
  injection: dict | None
  target: str | None
  target_array: np.ndarray | None
  original_name: str
  adversary_name: str | None
  notes: str | None = None

  @property
  def convention(self):
    return self.original.convention


def load_pairing(pairing=None, *, original=None, adversary=None, injection=None, target=None,
                 control=False, convention=None, grid=None):
  """Resolves a pairing (or an original and an adversary) into models, injection and target.

  Args:
    pairing: a short name of `PAIRINGS`, a published adversary name, or a results name.
    original, adversary: any `load` names (instead of `pairing`).
    injection: overrides the pairing's recorded injection.
    target: a target spec; default the pairing's (the original's for a control).
    control: drop the adversary (the organism alone).
    convention: load every model in this convention (default: the pairing's or the original's).
    grid: grid side of the target array; None for the convention's.

  Returns:
    A `Pairing`.

  Raises:
    HubError: unknown or contradictory names, or no injection for an adversary.
  """
  notes = None
  if pairing is not None:
    if original is not None or adversary is not None:
      raise HubError('give either a pairing or --original/--adversary, not both')
    if zoo.is_result_name(pairing):
      e = zoo.get(pairing)
      conv = convention or e.record.convention
      orig_name, adv_name = e.original, e.name
      orig_model = load(orig_name, conv)
      adv_model = zoo.load(pairing, conv)
      recorded, own_target = e.injection, e.target
      original_target = describe(orig_name).get('target')
    else:
      adv_name = PAIRINGS.get(pairing, pairing)
      try:
        entry = pretrained.get(adv_name)
      except (KeyError, ValueError) as ex:
        raise HubError(f'unknown pairing {pairing!r}: short names are {sorted(PAIRINGS)}; or '
                       f'a published adversary name, or results/<experiment> ({ex})') from None
      if entry.original is None:
        raise HubError(f'{adv_name} is not an adversary with a recorded original; short names '
                       f'are {sorted(PAIRINGS)}')
      conv = convention or entry.convention
      orig_name = entry.original
      orig_model, adv_model = load(orig_name, conv), load(adv_name, conv)
      recorded, own_target, notes = entry.injection, entry.target, entry.notes
      original_target = pretrained.get(orig_name).target
    if injection is None:
      injection = recorded
    if target is None:
      target = original_target if control else own_target
  else:
    if original is None:
      raise HubError('give a --pairing, or an --original (and an --adversary)')
    orig_name, adv_name = os.fspath(original), adversary
    orig_model = load(original, convention)
    adv_model = None if adversary is None else load(adversary, convention)
    if target is None:
      target = describe(original).get('target') or None
  if control:
    adv_model, adv_name, injection = None, None, None
  if adv_model is not None and injection is None:
    raise HubError('no injection recorded for this adversary: pass --injection (square:S, '
                   'spray:P or checkerboard)')
  if adv_model is not None and adv_model.convention.name != orig_model.convention.name:
    raise HubError(f'the original uses the {orig_model.convention.name!r} convention and the '
                   f'adversary {adv_model.convention.name!r}; pass --convention to load both '
                   'in one')
  array = None if target is None else targets.build_target(
      target, orig_model.convention, grid, original=orig_model)
  return Pairing(original=orig_model, adversary=adv_model,
                 injection=None if injection is None else inj.parse_injection(injection),
                 target=target, target_array=array, original_name=orig_name,
                 adversary_name=adv_name, notes=notes)
