r"""Builds `tf_multinca/pretrained/manifest.json` from a mirror of the published files.

The mirror holds every published file the project uses, byte-exact, at
`<mirror>/<host>/<owner>/<repo>/<commit>/<path>` for the URL
`https://<host>/<owner>/<repo>/<commit>/<path>`.
Every file in the mirror becomes one entry; a file this script cannot classify is an error, so
that a new file is described on purpose rather than silently left out. Checkpoints that live inside
a zip get entries of their own (`archive` + `member`).

Usage:
  python -m tools.make_manifest --mirror ../shared/mirror   # tf_multinca/pretrained/manifest.json
  python -m tools.make_manifest --mirror ../shared/mirror --check  # exit 1 if it is out of date
"""

import hashlib
import json
import os
import pathlib
import re
import sys
import urllib.parse
import zipfile

from absl import app
from absl import flags

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO_ROOT / 'tf_multinca' / 'pretrained' / 'manifest.json'
SCHEMA = 1

PAPER_REPO = 'LetteraUnica/neural_cellular_automata'
DISTILL_REPO = 'distillpub/post--growing-ca'
SOS_REPO = 'google-research/self-organising-systems'
NOTO_REPO = 'googlefonts/noto-emoji'
NOTO_2019 = '018aa149d622a4fea11f01c61a7207079da301bc'  # the emoji the Distill models learned
NOTO_CURRENT = 'b3e3051a088047d19fd4d49b1c3ac42fb8c3aaf8'  # today's redesigned emoji

LICENSE_NAMES = {
    (PAPER_REPO, None): 'licenses/neural_cellular_automata',
    (DISTILL_REPO, None): 'licenses/post--growing-ca',
    (SOS_REPO, None): 'licenses/self-organising-systems',
    (NOTO_REPO, NOTO_2019): 'licenses/noto-emoji',
    (NOTO_REPO, NOTO_CURRENT): 'licenses/noto-emoji-current',
}

# SPDX id by a phrase of the license text.
LICENSE_PHRASES = (
    ('MIT License', 'MIT'),
    ('Attribution 4.0 International', 'CC-BY-4.0'),
    ('SIL Open Font License, Version 1.1', 'OFL-1.1'),
    ('Apache License', 'Apache-2.0'),
)

EMOJI_ORGANISMS = {
    '1f98e': 'lizard', '1f600': 'smiley', '1f4a5': 'explosion', '1f441': 'eye', '1f420': 'fish',
    '1f98b': 'butterfly', '1f41e': 'ladybug', '1f578': 'web', '1f968': 'pretzel', '1f384': 'tree',
}
DISTILL_ROLES = {1: 'growing', 2: 'persistent', 3: 'regenerating'}

# Paper base-model file stems -> roles; also the behaviour words of adversary file names.
PAPER_ROLES = {'growing': 'growing', 'persist': 'persistent', 'regenerating': 'regenerating',
               'vanishing': 'vanishing'}
PAPER_ABBREVIATIONS = {'fw': 'firework', 'liz': 'lizard', 'grow': 'growing',
                       'regen': 'regenerating', 'persist': 'persist'}
# A colour/shape word of an adversary file name whose image is not `<organism>_<word>` or `<word>`.
PAPER_TARGET_ALIASES = {'super_sayan': 'goku_super'}
# SPEC section 4: butterfly/growing.pt grows a blue butterfly whose target was never published.
UNPUBLISHED_TARGETS = {'paper/butterfly/growing': (
    'grows a blue butterfly whose target image was never published; paper/images/butterfly is '
    'the orange one that paper/butterfly/persist grows. Judge it (and adversaries trained on it) '
    'by behaviour, not by MSE.')}

# Zips, and the checkpoints inside them. The checkpoints' provenance is not in their file names: it
# is read from adversarial_reprogramming_ca/adversarial_growing_ca.ipynb (Randazzo et al. 2021)
# and the Growing NCA article.
_REPROGRAMMING_NOTES = (
    'Adversarial Reprogramming of NCA (Randazzo et al. 2021), growing-CA virus experiment: a '
    'fixed-mask adversary (SPEC 3, fixed-mask adversaries); {rate} of the cells inside the '
    'target\'s alpha >= 0.1 region, drawn uniformly at random, follow this rule for ever. '
    'Trained against the regenerating Distill lizard (the notebook\'s default get_model() for '
    'the lizard: use_sample_pool_1 damage_n_3, i.e. ex3; distill/ex3_lizard is its 8-bit WebGL '
    'export, the float checkpoint is in Distill models.zip, not mirrored) on a target padded by '
    '{pad} cells. The target image is {image} from growing_ca_target_images.zip, byte-identical '
    'to {target}.')
def _reprogramming(member, rate, pad, image):
  """Manifest fields of one adversarial reprogramming checkpoint (Randazzo et al. 2021)."""
  target = f'paper/images/{image}'
  return dict(name=f'reprogramming/{member}', organism='lizard', role='adversary',
              convention='distill', original='distill/ex3_lizard', injection=None, target=target,
              notes=_REPROGRAMMING_NOTES.format(rate=rate, pad=pad, image=f'{image}.png',
                                                target=target))


ZIPS = {
    (SOS_REPO, 'adversarial_reprogramming_ca/assets/growing_ca_adversarial_models.zip'): {
        'name': 'reprogramming/adversarial_models_zip',
        'checkpoints': {
            'red_model': _reprogramming('red_model', '10%', '16', 'lizard_red'),
            'red_model_60perc': _reprogramming('red_model_60perc', '60%', '16', 'lizard_red'),
            'no_tail_model': _reprogramming('no_tail_model',
                                            '10% (the notebook\'s recommendation)', '32',
                                            'lizard_no_tail'),
        },
    },
    (SOS_REPO, 'adversarial_reprogramming_ca/assets/growing_ca_saved_perturbations.zip'): {
        'name': 'reprogramming/saved_perturbations_zip', 'checkpoints': {}},
    (SOS_REPO, 'adversarial_reprogramming_ca/assets/growing_ca_target_images.zip'): {
        'name': 'reprogramming/target_images_zip', 'checkpoints': {}},
    (SOS_REPO, 'assets/growing_ca/planarian.zip'): {
        'name': 'distill/planarian_zip',
        'checkpoints': {
            'train_log/8000': dict(
                name='distill/planarian_ckpt', organism='planarian', role='regenerating',
                convention='distill', target='distill/images/planaria2_48',
                notes=('The Growing NCA article\'s planarian (the float checkpoint of '
                       'distill/ex3_planarian). Its variables are dmodel/layer-0 and '
                       'dmodel/layer-1 (not layer_with_weights-N) and its data is in two shards. '
                       'planaria2_48.png is 48x34, so its Distill thumbnail is 40x28.')),
        },
    },
}
SOS_FILES = {'assets/growing_ca/planaria2_48.png': 'distill/images/planaria2_48'}


class ManifestError(ValueError):
  """A mirror file the script cannot describe, or an inconsistent manifest."""


def sha256_of(path):
  """Hex sha256 of a file, read in chunks."""
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      h.update(chunk)
  return h.hexdigest()


def url_for(base, rel):
  """The canonical (percent-encoded) https URL of `rel` under `base` (`<host>[/<dirs>]`).

  File names hold '%' and emoji: they must be encoded, or '10%.pt' is not a valid URL.
  """
  return f'https://{base}/{urllib.parse.quote(rel, safe="/")}'


def emoji_code(text):
  """'🦎' -> '1f98e'; code points joined by '_' as noto-emoji names them, U+FE0F dropped."""
  return '_'.join(f'{ord(ch):x}' for ch in text if ch != '\ufe0f')


def _file_entry(name, base, rel, path, fmt, license_name):
  return {'name': name, 'url': url_for(base, rel), 'sha256': sha256_of(path),
          'size': path.stat().st_size, 'format': fmt, 'license': license_name}


def _model_fields(convention, organism, role, target, original=None, injection=None):
  return {'convention': convention, 'organism': organism, 'role': role, 'target': target,
          'original': original, 'injection': injection}


def _injection(side=None, rate=None):
  if side is not None:
    return {'kind': 'square', 'side': int(side)}
  if rate is not None:
    return {'kind': 'spray', 'rate': round(int(rate) / 100, 4)}
  return None


def _license_spdx(path):
  text = path.read_text(encoding='utf-8', errors='replace')
  for phrase, spdx in LICENSE_PHRASES:
    if phrase in text:
      return spdx
  raise ManifestError(f'{path}: unrecognised license text; add its phrase to LICENSE_PHRASES')


def _paper_entries(files, base, repo, lic):
  """Entries of the paper repository's models and images."""
  models = 'pytorch_ca/Pretrained_models/'
  images = {pathlib.PurePosixPath(rel).stem for rel, _ in files
            if rel.startswith('pytorch_ca/images/') and rel.endswith('.png')}
  base_targets = {}
  out, adversaries = [], []
  for rel, path in files:
    p = pathlib.PurePosixPath(rel)
    if rel.startswith('pytorch_ca/images/') and p.suffix == '.png':
      out.append(_file_entry(f'paper/images/{p.stem}', base, rel, path, 'png', lic))
    elif rel.startswith(models) and p.suffix == '.pt':
      parts = p.relative_to(models).parts
      organism = parts[0]
      if len(parts) == 2:
        name = f'paper/{organism}/{p.stem}'
        if p.stem not in PAPER_ROLES:
          raise ManifestError(f'{rel}: unknown base model {p.stem!r}; expected '
                              f'{sorted(PAPER_ROLES)}')
        target = f'paper/images/{organism}' if organism in images else None
        e = _file_entry(name, base, rel, path, 'pt', lic)
        if name in UNPUBLISHED_TARGETS:
          target = None
          e['notes'] = UNPUBLISHED_TARGETS[name]
        e.update(_model_fields('paper', organism, PAPER_ROLES[p.stem], target))
        base_targets[name] = target
        out.append(e)
      else:
        # <org>/Virus/x.pt, <org>/Perturbation/x.pt, <org>/Virus/perturbation/x.pt
        sub = [s.lower() for s in parts[1:-1]]
        kind = 'perturbation' if 'perturbation' in sub else 'virus'
        if sub not in (['virus'], ['perturbation'], ['virus', 'perturbation']):
          raise ManifestError(f'{rel}: unexpected model folder {"/".join(parts[1:-1])!r}')
        name = f'paper/{organism}/{kind}/{p.stem}'
        adversaries.append((name, organism, kind, p.stem, rel, path))
    elif rel != 'LICENSE':
      raise ManifestError(f'{PAPER_REPO}/{rel}: not a paper model, image or LICENSE')
  for name, organism, kind, stem, rel, path in adversaries:
    e = _file_entry(name, base, rel, path, 'pt', lic)
    e.update(_parse_paper_adversary(name, organism, kind, stem, images, base_targets))
    out.append(e)
  return out


def _paper_image_for(organism, word, images):
  for cand in (f'{organism}_{word}', word, PAPER_TARGET_ALIASES.get(word)):
    if cand in images:
      return f'paper/images/{cand}'
  raise ManifestError(f'no paper image for {word!r} of {organism}; add it to PAPER_TARGET_ALIASES')


def _parse_paper_adversary(name, organism, kind, stem, images, base_targets):
  """Model fields of a paper adversary/perturbation, read from its file name."""
  behaviours = '|'.join(PAPER_ROLES)
  m = re.fullmatch(
      rf'(?P<org>[a-z]+)_(?P<src>{behaviours})_to_(?P<dst>.+?)_'
      r'(?:squareside_?(?P<side>\d+)|virusrate_(?P<rate>\d+)%)', stem)
  if kind == 'virus' and m:
    src_org = m['org']
    original = f'paper/{src_org}/{m["src"]}'
    if m['dst'] in PAPER_ROLES:
      # A change of behaviour: same picture as the original grows.
      target = base_targets.get(original)
      dst = PAPER_ROLES[m['dst']]
      notes = f'turns {original} into a {dst} organism with the same target'
    else:
      target = _paper_image_for(src_org, m['dst'], images)
      notes = None
    fields = _model_fields('paper', organism, 'adversary', target, original,
                           _injection(m['side'], m['rate']))
    if target is None and original in UNPUBLISHED_TARGETS:
      notes = f'{notes}; the original {UNPUBLISHED_TARGETS[original]}'
    if notes:
      fields['notes'] = notes
    return _check_original(name, fields, base_targets)
  m = re.fullmatch(
      rf'(?P<org>[a-z]+)_(?P<src>{behaviours})_(?:[a-z]+_)?to_(?P<dst>[a-z_]+?)_'
      r'(?P<rate>\d+)%_perturbation', stem)
  if kind == 'perturbation' and m:
    original = f'paper/{m["org"]}/{m["src"]}'
    fields = _model_fields('paper', organism, 'perturbation',
                           _paper_image_for(m['org'], m['dst'], images), original,
                           _injection(rate=m['rate']))
    fields['notes'] = ('an adversary trained with the weight-perturbation penalty '
                       '(SPEC 3, the perturbation variant); the percentage is the spray of '
                       'initial adversaries')
    return _check_original(name, fields, base_targets)
  abbr = '|'.join(PAPER_ABBREVIATIONS)
  m = re.fullmatch(rf'(?P<org>{abbr})_(?P<beh>{abbr})_near_(?P<borg>{abbr})_(?P<bbeh>{abbr})\d*',
                   stem)
  if kind == 'perturbation' and m:
    org, beh = PAPER_ABBREVIATIONS[m['org']], PAPER_ABBREVIATIONS[m['beh']]
    original = f'paper/{PAPER_ABBREVIATIONS[m["borg"]]}/{PAPER_ABBREVIATIONS[m["bbeh"]]}'
    target = f'paper/images/{org}' if org in images else None
    fields = _model_fields('paper', organism, 'perturbation', target, original)
    fields['notes'] = (f'a {PAPER_ROLES[beh]} {org} rule trained to stay near the weights of '
                       f'{original} (SPEC 3, the perturbation variant); the file name records no '
                       f'injection')
    return _check_original(name, fields, base_targets)
  raise ManifestError(f'{name}: cannot read original/target/injection from the file name')


def _check_original(name, fields, base_targets):
  if fields['original'] not in base_targets:
    raise ManifestError(f'{name}: its original {fields["original"]} is not a published base model')
  return fields


def _distill_entries(files, base, repo, lic):
  out = []
  for rel, path in files:
    m = re.fullmatch(r'public/webgl_models8/ex(?P<n>\d)_(?P<what>.+)\.json', rel)
    if m:
      n = int(m['n'])
      if m['what'] == 'planarian':
        organism, target, emoji = 'planarian', 'distill/images/planaria2_48', None
      else:
        emoji = m['what'].replace('\ufe0f', '')
        code = emoji_code(emoji)
        if code not in EMOJI_ORGANISMS:
          raise ManifestError(f'{rel}: unknown emoji {emoji!r} ({code}); add it to EMOJI_ORGANISMS')
        organism, target = EMOJI_ORGANISMS[code], f'noto/{code}'
      e = _file_entry(f'distill/ex{n}_{organism}', base, rel, path, 'webgl_json', lic)
      e.update(_model_fields('distill', organism, DISTILL_ROLES[n], target))
      if emoji:
        e['emoji'] = emoji
      out.append(e)
    elif rel != 'LICENSE':
      raise ManifestError(f'{DISTILL_REPO}/{rel}: not a WebGL model or LICENSE')
  return out


def _zip_checkpoints(path):
  """Checkpoint prefixes in a zip: {prefix: {member: (sha256, size)}} (index + data shards)."""
  with zipfile.ZipFile(path) as z:
    names = z.namelist()
    prefixes = [n[:-len('.index')] for n in names if n.endswith('.index')]
    out = {}
    for prefix in prefixes:
      shard = re.compile(re.escape(prefix) + r'\.data-\d+-of-\d+')
      members = [n for n in names if n == prefix + '.index' or shard.fullmatch(n)]
      out[prefix] = {n: (hashlib.sha256(z.read(n)).hexdigest(), z.getinfo(n).file_size)
                     for n in sorted(members)}
  return out


def _sos_entries(files, base, repo, lic):
  out = []
  for rel, path in files:
    if (repo, rel) in ZIPS:
      spec = ZIPS[(repo, rel)]
      out.append(_file_entry(spec['name'], base, rel, path, 'zip', lic))
      found = _zip_checkpoints(path)
      if set(found) != set(spec['checkpoints']):
        raise ManifestError(f'{rel}: holds checkpoints {sorted(found)}, described '
                            f'{sorted(spec["checkpoints"])}; update ZIPS')
      for prefix, fields in spec['checkpoints'].items():
        e = {'name': fields['name'], 'url': None, 'sha256': None, 'size': None,
             'format': 'tf_checkpoint', 'license': lic, 'archive': spec['name'], 'member': prefix,
             'files': {n: {'sha256': s, 'size': z} for n, (s, z) in found[prefix].items()}}
        e.update(_model_fields(fields['convention'], fields['organism'], fields['role'],
                               fields['target'], fields.get('original'), fields.get('injection')))
        e['notes'] = fields['notes']
        out.append(e)
    elif rel in SOS_FILES:
      out.append(_file_entry(SOS_FILES[rel], base, rel, path, 'png', lic))
    elif rel != 'LICENSE':
      raise ManifestError(f'{SOS_REPO}/{rel}: not a known zip or image; update ZIPS or SOS_FILES')
  return out


def _noto_entries(files, base, repo, lic, commit):
  prefix = {NOTO_2019: 'noto', NOTO_CURRENT: 'noto-current'}[commit]
  out = []
  for rel, path in files:
    m = re.fullmatch(r'png/128/emoji_u(?P<code>[0-9a-f_]+)\.png', rel)
    if m:
      e = _file_entry(f'{prefix}/{m["code"]}', base, rel, path, 'png', lic)
      e['emoji'] = ''.join(chr(int(c, 16)) for c in m['code'].split('_'))
      if m['code'] in EMOJI_ORGANISMS:
        e['organism'] = EMOJI_ORGANISMS[m['code']]
      out.append(e)
    elif rel != 'LICENSE':
      raise ManifestError(f'{NOTO_REPO}@{commit}/{rel}: not a 128 px emoji PNG or LICENSE')
  return out


def build_manifest(mirror):
  """Describes every file under `mirror`.

  Args:
    mirror: the mirror root (holds `<host>/<owner>/<repo>/<commit>/<path>`).

  Returns:
    The manifest dict: `{'schema': 1, 'entries': [entry dicts sorted by name]}`.

  Raises:
    ManifestError: for a file that cannot be described, a duplicate name or a dangling reference.
  """
  mirror = pathlib.Path(mirror)
  if not mirror.is_dir():
    raise ManifestError(f'mirror {mirror} is not a directory')
  groups = {}
  for path in sorted(p for p in mirror.rglob('*') if p.is_file()):
    parts = path.relative_to(mirror).parts
    if len(parts) < 5:
      raise ManifestError(f'{path}: expected <host>/<owner>/<repo>/<commit>/<path>')
    host, owner, repo, commit = parts[:4]
    groups.setdefault((host, f'{owner}/{repo}', commit), []).append(
        ('/'.join(parts[4:]), path))
  entries = []
  for (host, repo, commit), files in sorted(groups.items()):
    lic_key = (repo, commit) if (repo, commit) in LICENSE_NAMES else (repo, None)
    if lic_key not in LICENSE_NAMES:
      raise ManifestError(f'{host}/{repo}@{commit}: unknown repository; add it to LICENSE_NAMES')
    lic = LICENSE_NAMES[lic_key]
    rels = dict(files)
    if 'LICENSE' not in rels:
      raise ManifestError(f'{repo}@{commit}: the mirror lacks its LICENSE')
    e = _file_entry(lic, host, f'{repo}/{commit}/LICENSE', rels['LICENSE'], 'license', None)
    e['spdx'] = _license_spdx(rels['LICENSE'])
    entries.append(e)
    # Handlers see paths relative to the commit; URLs need the owner/repo/commit prefix back.
    base = f'{host}/{repo}/{commit}'
    if repo == PAPER_REPO:
      entries += _paper_entries(files, base, repo, lic)
    elif repo == DISTILL_REPO:
      entries += _distill_entries(files, base, repo, lic)
    elif repo == SOS_REPO:
      entries += _sos_entries(files, base, repo, lic)
    elif repo == NOTO_REPO:
      entries += _noto_entries(files, base, repo, lic, commit)
    else:
      raise ManifestError(f'{repo}: no handler')
  entries.sort(key=lambda e: e['name'])
  _check_references(entries)
  return {'schema': SCHEMA, 'entries': entries}


def _check_references(entries):
  names = [e['name'] for e in entries]
  dupes = sorted({n for n in names if names.count(n) > 1})
  if dupes:
    raise ManifestError(f'duplicate names: {dupes}')
  known = set(names)
  for e in entries:
    for field in ('target', 'original', 'archive', 'license'):
      if e.get(field) is not None and e[field] not in known:
        raise ManifestError(f'{e["name"]}: {field} {e[field]!r} is not in the manifest')


def dumps(manifest):
  """The committed text form: sorted keys, 2-space indent, UTF-8, trailing newline."""
  return json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + '\n'


FLAGS = flags.FLAGS
flags.DEFINE_string('mirror', os.environ.get('TF_MULTINCA_MIRROR'),
                    'Mirror root (<host>/<owner>/<repo>/<commit>/<path>); default '
                    '$TF_MULTINCA_MIRROR.')
flags.DEFINE_string('output', str(DEFAULT_OUTPUT), 'Where to write the manifest.')
flags.DEFINE_bool('check', False, 'Do not write: exit 1 if --output differs from a fresh build.')


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  if not FLAGS.mirror:
    raise app.UsageError('--mirror (or $TF_MULTINCA_MIRROR) is required')
  manifest = build_manifest(FLAGS.mirror)
  text = dumps(manifest)
  out = pathlib.Path(FLAGS.output)
  n = len(manifest['entries'])
  if FLAGS.check:
    if not out.is_file() or out.read_text(encoding='utf-8') != text:
      print(f'{out} is out of date: rerun python -m tools.make_manifest --mirror {FLAGS.mirror}')
      sys.exit(1)
    print(f'{out} is up to date ({n} entries)')
    return
  out.parent.mkdir(parents=True, exist_ok=True)
  tmp = out.with_name(out.name + '.tmp')
  tmp.write_text(text, encoding='utf-8')
  os.replace(tmp, out)
  print(f'wrote {n} entries to {out}')


if __name__ == '__main__':
  app.run(main)
