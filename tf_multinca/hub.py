"""The model hub: one `load` for every kind of model name, and one `load_pairing`.

    ca = hub.load('paper/lizard/persist')          # a published manifest name
    ca = hub.load('results/lizard_red')            # our trained adversary (the results zoo)
    ca = hub.load('local/my_lizard')               # a locally registered model
    ca = hub.load('runs/lizard_red')               # a training workdir (its exported weights)
    ca = hub.load('x/adversary.weights.h5')        # our weight file (convention beside it)
    ca = hub.load('x/lizard.pt')                   # a published format: .pt, WebGL .json, ckpt
    pair = hub.load_pairing('lizard_red')          # short name, manifest adversary or results/
    pair = hub.load_pairing('runs/my_adv')         # a training workdir: its original, target...

SavedModels are never loaded from a name or path: loading one runs its graph, which can do
anything (write files, ...). Our exports keep their weights in `.weights.h5` with a JSON sidecar
(`weights_file`), and a directory resolves through those. Every reader here reads data only.
"""

import dataclasses
import difflib
import json
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
# A training workdir's config (`training.workdir.CONFIG_FILE`): its original, target, injection.
WORKDIR_CONFIG = 'config.json'
# What `recorded` returns where nothing is recorded.
_NOTHING = {'original': None, 'target': None, 'injection': None, 'convention': None}


class HubError(errors.Error, ValueError):
  """A name that resolves to nothing loadable, or contradictory arguments."""


def _workdir_weights(path):
  for rel in WORKDIR_WEIGHTS:
    if (path / rel).is_file():
      return path / rel
  return None


def _workdir_config(name):
  """The config (a dict) of training workdir `name`, or None when `name` is not one."""
  path = pathlib.Path(os.fspath(name)).expanduser()
  try:
    if not (path / WORKDIR_CONFIG).is_file():
      return None
    doc = json.loads((path / WORKDIR_CONFIG).read_text(encoding='utf-8'))
  except (OSError, ValueError):
    return None
  return doc if isinstance(doc, dict) and doc.get('kind') in ('adversary', 'nca') else None


def check_conventions(original, adversary, fix='pass --convention to load both in one'):
  """Raises HubError unless the conventions `original` and `adversary` (names; None: unknown)
  agree: the one check of a pairing's conventions (pairings, takeovers, adversary training)."""
  if original and adversary and original != adversary:
    raise HubError(f'the original uses the {original!r} convention and the adversary '
                   f'{adversary!r}; {fix}')


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
  doc = _workdir_config(text)
  if doc is not None:
    return {'convention': doc.get('convention'), 'role': doc['kind'], 'target': doc.get('target'),
            'organism': doc.get('original') if doc['kind'] == 'adversary' else None}
  try:
    e = pretrained.get(text)
  except (KeyError, ValueError, TypeError):
    return {}
  return {'convention': e.convention, 'role': e.role, 'target': e.target,
          'organism': e.organism}


def recorded(name):
  """What adversary `name` was trained for, as recorded with it, without loading a model:
  {'original', 'target', 'injection', 'convention'}, None where nothing is recorded.

  `name`: a `PAIRINGS` short name, a published adversary, results/<experiment>, a registered
  name or a training workdir (its config.json).
  """
  text = os.fspath(name)
  if zoo.is_result_name(text):
    e = zoo.get(text)
    return {'original': e.original, 'target': e.target,
            'injection': e.record.config['injection'], 'convention': e.record.convention}
  entry = registry.lookup(text)
  if entry is not None:
    return {k: entry.get(k) or None for k in _NOTHING}
  doc = _workdir_config(text)
  if doc is not None:
    if doc['kind'] != 'adversary':  # an organism: its own image, no original
      return dict(_NOTHING, target=doc.get('target'), convention=doc.get('convention'))
    return {k: doc.get(k) or None for k in _NOTHING}
  try:
    e = pretrained.get(PAIRINGS.get(text, text))
  except (KeyError, ValueError, TypeError):
    return dict(_NOTHING)
  return {'original': e.original, 'target': e.target, 'injection': e.injection,
          'convention': e.convention}


def pairing_injection(name):
  """The injection a pairing's adversary was trained for (a `PAIRINGS` short name, a published
  adversary, results/<experiment> or a training workdir), as recorded; None if none."""
  return recorded(name)['injection']


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
    target_source: where the target came from ('--target', "the adversary's recorded
      target", ...); why there is none when `target` is None.
    messages: lines for the console: each recorded value an explicit argument overrode.
  """
  original: model_lib.CAModel
  adversary: model_lib.CAModel | None
  injection: dict | None
  target: str | None
  target_array: np.ndarray | None
  original_name: str
  adversary_name: str | None
  notes: str | None = None
  target_source: str = ''
  messages: tuple = ()

  @property
  def convention(self):
    return self.original.convention


def load_pairing(pairing=None, *, original=None, adversary=None, injection=None, target=None,
                 control=False, convention=None, grid=None):
  """Resolves a pairing (or an original and an adversary) into models, injection and target.

  The adversary's record (`recorded`) gives the original, the injection and the target (the
  MSE's); an explicit argument overrides it, and `messages` says so. With no target recorded
  and none given, the target is None (no MSE), never the original's image.

  Args:
    pairing: a short name of `PAIRINGS`, a published adversary name, a results name or a
      training workdir.
    original, adversary: any `load` names (instead of `pairing`; `original` may also override
      a pairing's).
    injection: overrides the pairing's recorded injection.
    target: a target spec; default the adversary's recorded one (the original's for a control).
    control: drop the adversary (the organism alone).
    convention: load every model in this convention (default: the pairing's or each model's).
    grid: grid side of the target array; None for the convention's.

  Returns:
    A `Pairing`.

  Raises:
    HubError: unknown or contradictory names, or no injection for an adversary.
  """
  notes = None
  conv = convention
  if pairing is not None:
    if adversary is not None:
      raise HubError('give either a --pairing or an --adversary, not both')
    adversary, notes = _pairing_adversary(pairing)
  rec = dict(_NOTHING) if adversary is None else recorded(adversary)
  if pairing is not None:
    conv = convention or rec['convention']
  said = []
  if original is None:
    original = rec['original']
    if original is None:
      raise HubError('give a --pairing, or an --original (and an --adversary)' if adversary
                     is None else f'{adversary} records no original organism: pass --original')
  elif rec['original'] and os.fspath(original) != rec['original']:
    said.append(f'--original={original} overrides the recorded original {rec["original"]}')
  orig_name, adv_name = os.fspath(original), None if adversary is None else os.fspath(adversary)
  orig_model = load(original, conv)
  adv_model = None if adversary is None or control else load(adversary, conv)
  if adv_model is not None:
    if injection is None:
      injection = rec['injection']
    elif rec['injection'] and inj.parse_injection(injection) != inj.parse_injection(
        rec['injection']):
      said.append(f'--injection={injection} overrides the recorded injection '
                  f'{inj.describe(rec["injection"])}')
  if target is not None:
    source = '--target'
    if adv_model is not None and rec['target'] and target != rec['target']:
      said.append(f'--target={target} overrides the recorded target {rec["target"]}')
  elif adv_model is None:
    target = describe(original).get('target') or None
    source = ("the original's own image" if target else
              f'no target recorded for {orig_name} and no --target: the MSE is not reported')
  else:
    target = rec['target']
    source = ("the adversary's recorded target" if target else
              f'no target recorded for {adv_name} and no --target: the MSE is not reported '
              "(not measured against the original's image)")
  if adv_model is None:
    adv_name, injection = None, None
  if adv_model is not None and injection is None:
    raise HubError('no injection recorded for this adversary: pass --injection '
                   f'({inj.RANGES})')
  if adv_model is not None:
    check_conventions(orig_model.convention.name, adv_model.convention.name)
  array = None if target is None else targets.build_target(
      target, orig_model.convention, grid, original=orig_model)
  return Pairing(original=orig_model, adversary=adv_model,
                 injection=None if injection is None else inj.parse_injection(injection),
                 target=target, target_array=array, original_name=orig_name,
                 adversary_name=adv_name, notes=notes, target_source=source,
                 messages=tuple(said))


def _pairing_adversary(pairing):
  """(adversary name, notes) of a --pairing; raises HubError (suggesting pairings) if none."""
  text = os.fspath(pairing)
  if zoo.is_result_name(text) or _workdir_config(text) is not None:
    if (_workdir_config(text) or {}).get('kind', 'adversary') != 'adversary':
      raise HubError(f'{text} is the workdir of an organism (an nca run), not of an adversary; '
                     'pass it as --original')
    return text, None
  name = PAIRINGS.get(text, text)
  try:
    entry = pretrained.get(name)
  except (KeyError, ValueError):
    entry = None
  if entry is None or entry.original is None:
    adversaries = [e.name for e in pretrained.entries() if e.original is not None]
    close = difflib.get_close_matches(text, list(PAIRINGS) + adversaries, n=3, cutoff=0.6)
    hint = f'did you mean {", ".join(close)}? ' if close else ''
    raise HubError(f'unknown pairing {text!r}: {hint}short names are {", ".join(sorted(PAIRINGS))}'
                   '; or a published adversary, results/<experiment> or a training workdir')
  return name, entry.notes
