r"""Exports published pairings or single rules as SavedModel, TF.js or Distill WebGL JSON.

    python -m tools.export --pairing=lizard_red --format=tfjs       # into tools/web/models
    python -m tools.export --pairing=lizard_red,lizard_blue --format=saved_model,tfjs \
        --out_dir=runs/export
    python -m tools.export --model=distill/ex2_lizard --format=tfjs,webgl_json

Each model goes to `<out_dir>/<name>/` (see `tf_multinca.export`); `<out_dir>/index.json` lists
the TF.js exports for the demo page (`python -m http.server -d tools/web 8000`). The tfjs
format needs the optional converter: `pip install --no-deps tensorflowjs==4.22.0`.
The work is in `tf_multinca.export`.
"""

import os
import pathlib

from absl import app
from absl import flags
from absl import logging

from tf_multinca import binary

# Before TensorFlow loads: its start-up chatter would bury the summary.
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
# pylint: disable=g-import-not-at-top,wrong-import-position
from tf_multinca import export
from tf_multinca import hub

# The demo's models (README): tools/web/models of the checkout this package runs from, else of
# the current directory (an installed package has no demo beside it).
_WEB = pathlib.Path(__file__).resolve().parents[2] / 'tools' / 'web'
DEFAULT_OUT = (_WEB if _WEB.is_dir() else pathlib.Path('tools', 'web')) / 'models'

FLAGS = flags.FLAGS
flags.DEFINE_list('pairing', [], 'pairings: short names (' + ', '.join(sorted(hub.PAIRINGS))
                  + '), manifest adversary names, results/<experiment> or training workdirs')
flags.DEFINE_list('model', [], 'single rules: manifest model names or weight files')
flags.DEFINE_list('format', ['tfjs'], 'comma-separated: ' + ', '.join(export.FORMATS))
flags.DEFINE_string('out_dir', str(DEFAULT_OUT), 'output directory (one subdirectory per model)')
flags.DEFINE_enum('convention', None, ['paper', 'distill'], 'load the models in this convention '
                  '(default: the manifest\'s)')
flags.DEFINE_bool('index', True, 'rewrite <out_dir>/index.json (the demo\'s model menu: the '
                  'exports with a TF.js model, the format the demo reads), whatever --format')
flags.register_validator('out_dir', binary.directory_path, message='--out_dir must be a '
                         'directory path (neither it nor a folder above it an existing file)')


@flags.validator('format', message='--format: comma-separated saved_model, tfjs, webgl_json')
def _check_format(value):
  return bool(value) and all(v in export.FORMATS for v in value)


def _safe_name(name):
  return name.replace('/', '_').replace('%', 'pct')


def _models():
  """[(name, model, info)] from the flags."""
  out = []
  for p in FLAGS.pairing:
    r = hub.load_pairing(p, convention=FLAGS.convention)
    info = dict(export.pairing_info(r), pairing=p)
    out.append((_safe_name(pathlib.Path(p).name if os.path.isdir(p) else p),
                export.pairing_model(r), info))
  for m in FLAGS.model:
    out.append((_safe_name(pathlib.Path(m).stem if os.path.exists(m) else m),
                hub.load(m, FLAGS.convention), {'model': m}))
  return out


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not FLAGS.pairing and not FLAGS.model:
    raise app.UsageError('give --pairing=... and/or --model=...')
  logging.set_verbosity(logging.WARNING)  # TF's SavedModel chatter would bury the summary
  out_dir = pathlib.Path(FLAGS.out_dir)
  models = _models()
  for name, model, info in models:
    paths = export.export(model, out_dir / name, formats=FLAGS.format, name=name, info=info)
    for kind, path in paths.items():
      print(f'{name} {kind}: {path}')
  if FLAGS.index:
    index = export.write_index(out_dir)
    listed = {m['path'].rstrip('/') for m in index['models']}
    missing = [name for name, _, _ in models if name not in listed]
    print(f'index: {out_dir / "index.json"} ({len(index["models"])} models)' +
          (f'; not listed, no TF.js model (the demo reads tfjs): {", ".join(missing)}'
           if missing else ''))
  return 0



run = binary.entry(main)  # the console script's entry point


if __name__ == '__main__':
  run()
