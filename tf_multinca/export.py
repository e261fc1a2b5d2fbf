r"""One export directory for the browser demo, and the demo's index of them.

    from tf_multinca import export, hub
    pair = hub.load_pairing('lizard_red')
    paths = export.export(export.pairing_model(pair), 'out/lizard_red',
                          formats=('saved_model', 'tfjs'), info=export.pairing_info(pair))

An export directory holds::

    meta.json          what the demo needs: kind, grid, channels, seed cells, colours, names
    saved_model/       (format saved_model: see `saved_model`)
    tfjs/step/, tfjs/rollout/   model.json + weights (format tfjs: see `tfjs`)
    selfcheck.json, selfcheck.bin   a state and the SavedModel's step of it (format tfjs)
    webgl/rule<i>.json (format webgl_json: one Distill WebGL file per rule, quantised)

Every file and directory is replaced atomically: an interrupted export leaves the previous one.
"""

import json
import pathlib
import tempfile

import numpy as np

from tf_multinca import fileio
from tf_multinca import layout
from tf_multinca import multi
from tf_multinca import perception
from tf_multinca import render
from tf_multinca import saved_model
from tf_multinca import tfjs
from tf_multinca.pretrained import formats as formats_lib

FORMATS = ('saved_model', 'tfjs', 'webgl_json')
META_VERSION = 1
ExportError = tfjs.ExportError  # every error of an export (bad formats, the converter, ops)


def pairing_model(pair):
  """The `MultiNCA` of a `pretrained.Pairing`: rule 0 the original, rule 1 the adversary."""
  return multi.MultiNCA([pair.original, pair.adversary])


def pairing_info(pair):
  """Metadata of a `pretrained.Pairing` for `describe` / `export`."""
  return {'original': pair.original_name, 'adversary': pair.adversary_name,
          'injection': pair.injection, 'target': pair.target}


def describe(model, name=None, info=None):
  """The JSON-ready description the demo and the JS tests read (`meta.json`).

  Everything the page needs about layout and conventions is written here from the library, so
  the page never hard-codes a channel index.

  Args:
    model: `CAModel` or `MultiNCA`.
    name: the export's name.
    info: more fields (names of the rules, injection, target).

  Returns:
    A dict.
  """
  is_multi = isinstance(model, multi.MultiNCA)
  rules = model.rules if is_multi else [model]
  conv = rules[0].convention
  seed = model.seed(1).numpy()[0]  # [H, W, C]
  h, w, c = seed.shape
  cells = [[int(y), int(x), int(ch), float(seed[y, x, ch])] for y, x, ch in np.argwhere(seed)]
  if is_multi:
    alphas = [layout.multi_alpha(i) for i in range(model.k)]
  else:
    alphas = [layout.ALPHA]
  colours = np.concatenate([render.ORIGINAL_COLOUR[None], render.ADVERSARY_COLOUR[None],
                            render.EXTRA_COLOURS])[:len(alphas)]
  meta = {
      'meta_version': META_VERSION,
      'name': name,
      'kind': 'pairing' if is_multi else 'single',
      'rules': len(rules),
      'channels': int(c),
      'grid': [int(h), int(w)],
      'rgb_channels': list(range(3)),
      'alpha_channels': alphas,
      'seed_cells': cells,
      'fire_rate': float(rules[0].fire_rate),
      'alive_threshold': float(perception.ALIVE_THRESHOLD),
      'convention': {'name': conv.name, 'padding': conv.padding, 'colours': conv.colours,
                     'seed': conv.seed, 'fire_inclusive': conv.fire_inclusive},
      'mask_colours': [[float(v) for v in col] for col in colours],
      'signatures': {
          'step': ['x', 'fire_rate', 'angle', 'step_size'],
          'rollout': ['x', 'steps', 'fire_rate', 'angle', 'step_size'],
      },
  }
  meta.update(info or {})
  return meta


def export(model, out_dir, formats=('saved_model', 'tfjs'), name=None, info=None,
           check_ops=True):
  """Exports `model` into `out_dir` in the given formats (see the module docstring).

  Args:
    model: `CAModel` or `MultiNCA`.
    out_dir: the export's directory (created; files of the requested formats are replaced).
    formats: any of `FORMATS`.
    name: the export's name (default: the directory's name).
    info: extra metadata (`pairing_info`).
    check_ops: check every converted graph with `tfjs.check_ops`.

  Returns:
    {what: path}: 'meta', and 'saved_model', 'tfjs/<signature>', 'webgl/<i>' as exported.

  Raises:
    ExportError: an unknown format, a missing converter, a failed conversion or an unsupported
      op.
  """
  formats = tuple(formats)
  bad = [f for f in formats if f not in FORMATS]
  if bad or not formats:
    raise ExportError(f'formats {bad or "(none)"}: expected some of {FORMATS}')
  if 'tfjs' in formats:
    tfjs.require()  # before any work
  out_dir = pathlib.Path(out_dir)
  files = [p for p in (out_dir, *out_dir.parents) if p.exists() and not p.is_dir()]
  if files:
    raise ExportError(f'cannot export into {out_dir}: {files[0]} is a file, not a directory; '
                      'move it or pick another --out_dir')
  out_dir.mkdir(parents=True, exist_ok=True)
  name = name or out_dir.name
  paths = {}
  meta = describe(model, name, info)
  meta['formats'] = list(formats)

  if 'saved_model' in formats or 'tfjs' in formats:
    with tempfile.TemporaryDirectory(dir=out_dir, prefix='.tmp') as tmp:
      saved = pathlib.Path(tmp) / 'saved_model'
      saved_model.write(model, saved, info, extra_files={'meta.json': json.dumps(meta, indent=1)})
      if 'tfjs' in formats:
        converted = tfjs.convert(saved, pathlib.Path(tmp) / 'tfjs')
        if check_ops:
          for path in converted.values():
            tfjs.check_ops(path)
        fileio.replace_dir(pathlib.Path(tmp) / 'tfjs', out_dir / 'tfjs')
        paths.update({f'tfjs/{s}': out_dir / 'tfjs' / s / 'model.json' for s in converted})
        meta['selfcheck'] = tfjs.write_selfcheck(saved, model, out_dir)
      if 'saved_model' in formats:
        fileio.replace_dir(saved, out_dir / 'saved_model')
        paths['saved_model'] = out_dir / 'saved_model'

  if 'webgl_json' in formats:
    for i, r in enumerate(saved_model.rules_of(model)):
      path = out_dir / 'webgl' / f'rule{i}.json'
      formats_lib.write_webgl_json(r.get_rule_weights(), path)
      paths[f'webgl/{i}'] = path

  fileio.write_json(out_dir / 'meta.json', meta)
  paths['meta'] = out_dir / 'meta.json'
  return paths


def write_index(models_dir):
  """Writes `models_dir/index.json`: every export below it that has a TF.js model.

  The demo page lists these in its model menu.

  Returns:
    The index dict: {'models': [{'name', 'kind', 'path', 'original', 'adversary', ...}]}.
  """
  models_dir = pathlib.Path(models_dir)
  items = []
  for meta_path in sorted(models_dir.glob('*/meta.json')):
    meta = json.loads(meta_path.read_text(encoding='utf-8'))
    if not (meta_path.parent / 'tfjs' / 'step' / 'model.json').is_file():
      continue
    items.append({'name': meta.get('name') or meta_path.parent.name,
                  'path': meta_path.parent.name + '/', 'kind': meta.get('kind'),
                  'original': meta.get('original'), 'adversary': meta.get('adversary'),
                  'injection': meta.get('injection')})
  doc = {'models': items}
  models_dir.mkdir(parents=True, exist_ok=True)
  fileio.write_json(models_dir / 'index.json', doc)
  return doc
