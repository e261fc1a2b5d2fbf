"""Tests of the manifest, fetching, loading and targets (tf_multinca/pretrained, targets.py).

The real check is `test_every_entry_verifies_and_every_model_loads`: every published file in the
mirror matches the manifest byte for byte and every model loads into a `CAModel`. Downloads are
tested against a local HTTP server (real sockets, real `requests`), never the internet.
"""

import dataclasses
import functools
import http.server
import importlib
import os
import pathlib
import shutil
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tf_multinca import CAModel
from tf_multinca import pretrained
from tf_multinca import targets

REPO = pathlib.Path(__file__).resolve().parents[1]
# The submodule, not the function `pretrained.fetch` that shadows it in the package namespace.
fetch_mod = importlib.import_module('tf_multinca.pretrained.fetch')

LIZARD = '\U0001F98E'
PERSIST = 'paper/lizard/persist'
VIRUS = 'paper/lizard/virus/lizard_persist_to_red_virusrate_10%'  # '%' in its URL


@pytest.fixture(scope='module', autouse=True)
def _env(mirror, tmp_path_factory):
  """Every test reads the mirror and writes a throw-away cache unless it says otherwise."""
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv(fetch_mod.CACHE_ENV, str(tmp_path_factory.mktemp('cache')))
    mp.setenv(fetch_mod.MIRROR_ENV, str(mirror))
    mp.delenv('TF_MULTINCA_MANIFEST', raising=False)
    yield


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
  cache = tmp_path / 'cache'
  monkeypatch.setenv(fetch_mod.CACHE_ENV, str(cache))
  return cache


def _files(root):
  return sorted(p for p in pathlib.Path(root).rglob('*') if p.is_file())


def _mirror_file(mirror, entry):
  return mirror.joinpath(*fetch_mod.url_path(entry.url).parts)


def _fake_mirror(root, mirror, entry, data=None):
  """Lays out one file under `root` as in the mirror; `data` replaces its bytes."""
  dest = _mirror_file(root, entry)
  dest.parent.mkdir(parents=True, exist_ok=True)
  if data is None:
    shutil.copyfile(_mirror_file(mirror, entry), dest)
  else:
    dest.write_bytes(data)
  return dest


# ------------------------------------------------------------------------------------------
# The manifest
# ------------------------------------------------------------------------------------------


def test_manifest_is_generated_from_the_mirror(mirror):
  r = subprocess.run([sys.executable, '-m', 'tools.make_manifest', f'--mirror={mirror}',
                      '--check'], cwd=REPO, capture_output=True, text=True, timeout=120)
  assert r.returncode == 0, r.stdout + r.stderr


def test_manifest_covers_every_mirror_file_once(mirror):
  by_path = {}
  for e in pretrained.entries():
    if e.in_archive:
      continue
    assert e.url.startswith('https://raw.githubusercontent.com/'), e.name
    commit = e.url.split('/')[5]
    assert len(commit) == 40 and int(commit, 16) >= 0, f'{e.name}: URL not pinned to a commit'
    by_path[_mirror_file(mirror, e)] = e.name
  assert sorted(by_path) == _files(mirror)


def test_manifest_fields():
  m = pretrained.load_manifest()
  for e in m.values():
    if e.is_model:
      assert e.convention == ('paper' if e.format == 'pt' else 'distill'), e.name
      assert e.role in ('growing', 'persistent', 'regenerating', 'vanishing', 'adversary',
                        'perturbation'), e.name
      assert e.organism, e.name
    if e.format != 'license':
      assert m[e.license].format == 'license', e.name
    for ref in (e.target, e.original, e.archive):
      assert ref is None or ref in m, f'{e.name} refers to unknown {ref}'
    if e.target:
      assert m[e.target].format == 'png', e.name
  assert m[PERSIST].role == 'persistent' and m[PERSIST].target == 'paper/images/lizard'
  red = m['paper/lizard/virus/lizard_persist_to_red_squareside_2']
  assert (red.role, red.original, red.target) == ('adversary', PERSIST, 'paper/images/lizard_red')
  assert red.injection == {'kind': 'square', 'side': 2}
  assert m['paper/goku/virus/goku_persist_to_super_sayan_squareside2'].injection == {
      'kind': 'square', 'side': 2}
  assert m[VIRUS].injection == {'kind': 'spray', 'rate': 0.1}
  assert m['paper/lizard/virus/lizard_persist_to_regenerating_squareside2'].target == (
      'paper/images/lizard')
  # SPEC 4: the blue butterfly was never published.
  assert m['paper/butterfly/growing'].target is None
  assert m['paper/butterfly/virus/butterfly_growing_to_persist_virusrate_3%'].target is None
  assert m['paper/butterfly/persist'].target == 'paper/images/butterfly'
  ex2 = m['distill/ex2_lizard']
  assert (ex2.role, ex2.target, ex2.convention) == ('persistent', 'noto/1f98e', 'distill')
  assert m['distill/ex3_planarian'].target == 'distill/images/planaria2_48'
  ckpt = m['reprogramming/red_model']
  assert (ckpt.format, ckpt.archive, ckpt.member) == (
      'tf_checkpoint', 'reprogramming/adversarial_models_zip', 'red_model')
  assert ckpt.original == 'distill/ex3_lizard' and ckpt.injection is None and ckpt.notes
  assert m['distill/planarian_ckpt'].member == 'train_log/8000'
  assert {e.name for e in pretrained.entries('license')} == {
      'licenses/neural_cellular_automata', 'licenses/post--growing-ca',
      'licenses/self-organising-systems', 'licenses/noto-emoji', 'licenses/noto-emoji-current'}
  assert len(pretrained.entries('model')) == len(pretrained.entries('pt')) + len(
      pretrained.entries('webgl_json')) + len(pretrained.entries('tf_checkpoint'))


def test_manifest_location(tmp_path, monkeypatch):
  manifest_mod = importlib.import_module('tf_multinca.pretrained.manifest')
  assert manifest_mod.manifest_path() == REPO / 'tf_multinca' / 'pretrained' / 'manifest.json'
  copy = tmp_path / 'm.json'
  copy.write_text('{"schema": 1, "entries": [{"name": "x", "format": "png", "url": '
                  '"https://h/x.png", "sha256": "00", "size": 1}]}')
  monkeypatch.setenv('TF_MULTINCA_MANIFEST', str(copy))
  assert [e.name for e in pretrained.entries()] == ['x']
  monkeypatch.setenv('TF_MULTINCA_MANIFEST', str(tmp_path / 'missing.json'))
  with pytest.raises(pretrained.ManifestError, match='missing.json'):
    pretrained.get(PERSIST)


def test_unknown_name_lists_close_matches():
  with pytest.raises(pretrained.UnknownEntryError, match='paper/lizard/persist'):
    pretrained.get('paper/lizard/persit')
  with pytest.raises(pretrained.UnknownEntryError, match='distill/ex2_lizard'):
    pretrained.fetch('distill/ex2_lizzard')
  with pytest.raises(pretrained.PretrainedError,
                     match='neither a pretrained manifest name.*paper/lizard/persist'):
    pretrained.load('paper/lizard/persit')
  with pytest.raises(pretrained.PretrainedError, match='neither'):
    pretrained.load('/no/such/model.pt')
  with pytest.raises(pretrained.PretrainedError, match='not a model'):
    pretrained.load('noto/1f98e')
  with pytest.raises(pretrained.PretrainedError, match='without an original'):
    pretrained.load_pairing(PERSIST)
  with pytest.raises(ValueError, match='unknown entry kind'):
    pretrained.entries('modle')


# ------------------------------------------------------------------------------------------
# Every published file, from the mirror
# ------------------------------------------------------------------------------------------


def test_every_entry_verifies_and_every_model_loads():
  for e in pretrained.entries():
    assert pretrained.verify(e), e.name
  for e in pretrained.entries('model'):
    ca = pretrained.load(e.name)
    assert isinstance(ca, CAModel) and ca.convention.name == e.convention, e.name
    w = ca.get_rule_weights()
    assert w['conv1/kernel'].shape == (1, 1, 48, 128), e.name
    assert all(np.isfinite(v).all() for v in w.values()), e.name
    assert np.abs(w['conv2/kernel']).max() > 0, f'{e.name}: a trained rule is not all zeros'
  for e in pretrained.entries('image'):
    for convention in ('distill', 'paper'):
      t = targets.load_target(e.name, convention)
      assert t.dtype == np.float32 and max(t.shape[:2]) == 40 and t.shape[2] == 4, e.name


def test_load_from_path_and_convention_override():
  path = pretrained.fetch(PERSIST)
  ca = pretrained.load(path)
  assert ca.convention.name == 'paper'
  by_name = pretrained.load(PERSIST).get_rule_weights()
  for k, v in ca.get_rule_weights().items():
    np.testing.assert_array_equal(v, by_name[k])
  assert pretrained.load(path, convention='distill').convention.name == 'distill'
  assert pretrained.load(pretrained.fetch('distill/ex2_lizard')).convention.name == 'distill'
  prefix = pretrained.fetch('reprogramming/red_model')
  assert pathlib.Path(f'{prefix}.index').is_file()
  assert pretrained.load(str(prefix)).convention.name == 'distill'


def test_load_pairing():
  pair = pretrained.load_pairing('paper/lizard/virus/lizard_persist_to_red_squareside_2')
  assert pair.original_name == PERSIST
  assert pair.injection == {'kind': 'square', 'side': 2}
  assert pair.target == 'paper/images/lizard_red'
  assert pair.original.convention.name == pair.adversary.convention.name == 'paper'
  assert not np.array_equal(pair.original.get_rule_weights()['conv1/kernel'],
                            pair.adversary.get_rule_weights()['conv1/kernel'])
  pair = pretrained.load_pairing('reprogramming/red_model_60perc')
  assert pair.original_name == 'distill/ex3_lizard' and pair.injection is None
  assert pair.adversary.convention.name == 'distill'


# ------------------------------------------------------------------------------------------
# Checksums and the cache
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize('damage', ['altered', 'truncated'])
def test_mirror_checksum_mismatch_keeps_nothing(mirror, tmp_path, own_cache, monkeypatch, damage):
  entry = pretrained.get(PERSIST)
  data = bytearray(_mirror_file(mirror, entry).read_bytes())
  if damage == 'altered':
    data[len(data) // 2] ^= 0xFF
  else:
    data = data[:len(data) // 2]
  fake = tmp_path / 'fake_mirror'
  _fake_mirror(fake, mirror, entry, bytes(data))
  monkeypatch.setenv(fetch_mod.MIRROR_ENV, str(fake))
  with pytest.raises(pretrained.ChecksumError) as err:
    pretrained.fetch(PERSIST)
  assert entry.sha256 in str(err.value) and 'got sha256' in str(err.value)
  assert err.value.expected_size == entry.size and err.value.got_size == len(data)
  assert _files(own_cache) == []  # neither the file nor its temp copy
  with pytest.raises(pretrained.ChecksumError):
    pretrained.verify(PERSIST)
  assert _files(own_cache) == []


def test_missing_from_mirror(tmp_path, own_cache, monkeypatch):
  monkeypatch.setenv(fetch_mod.MIRROR_ENV, str(tmp_path / 'empty'))
  with pytest.raises(pretrained.FetchError, match='not in the mirror'):
    pretrained.fetch(PERSIST)
  assert _files(own_cache) == []


def test_corrupt_cache_is_refetched(own_cache):
  entry = pretrained.get(VIRUS)
  path = pretrained.fetch(VIRUS)
  assert path.is_relative_to(own_cache) and path.name.endswith('virusrate_10%.pt')
  good = path.read_bytes()
  path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # same size, different sha256
  assert pretrained.fetch(VIRUS) == path and path.read_bytes() == good
  path.write_bytes(b'junk')
  assert pretrained.verify(entry) and path.read_bytes() == good


def test_cached_file_needs_no_source(own_cache, monkeypatch):
  path = pretrained.fetch(PERSIST)
  monkeypatch.delenv(fetch_mod.MIRROR_ENV)
  # A verified cached copy is used: no mirror, no network.
  monkeypatch.setattr(fetch_mod, '_download', None)
  assert pretrained.fetch(PERSIST) == path


def test_zip_member_is_extracted_and_reverified(own_cache):
  entry = pretrained.get('reprogramming/red_model')
  prefix = pretrained.fetch(entry)
  assert prefix == own_cache / 'extracted' / 'reprogramming' / 'red_model' / 'red_model'
  index = pathlib.Path(f'{prefix}.index')
  good = index.read_bytes()
  index.write_bytes(b'corrupt')
  assert pretrained.fetch(entry) == prefix and index.read_bytes() == good
  w, fmt = pretrained.read_weights(prefix)
  assert fmt == 'tf_checkpoint' and w['conv1/kernel'].shape == (1, 1, 48, 128)
  prefix = pretrained.fetch('distill/planarian_ckpt')
  assert sorted(p.name for p in prefix.parent.iterdir()) == [
      '8000.data-00000-of-00002', '8000.data-00001-of-00002', '8000.index']


# ------------------------------------------------------------------------------------------
# Downloads over HTTP (a local server; real requests)
# ------------------------------------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
  """Serves a fake mirror; `server.modes[path]` can make a path truncate or fail once."""

  def log_message(self, *args):
    del args

  def do_GET(self):
    server = self.server
    rel = self.path.lstrip('/')
    server.hits.append(rel)
    mode = server.modes.get(rel)
    if mode == 'truncate':
      data = pathlib.Path(self.translate_path(self.path)).read_bytes()
      self.send_response(200)
      self.send_header('Content-Length', str(len(data)))  # promises more than it sends
      self.end_headers()
      self.wfile.write(data[:len(data) // 2])
      self.close_connection = True
      return
    if mode == 'fail_once':
      server.modes[rel] = None
      self.send_error(503, 'try again')
      return
    super().do_GET()


@pytest.fixture
def http_mirror(tmp_path, mirror, own_cache, monkeypatch):
  """(server, serve): a fake mirror served on 127.0.0.1 and a helper that publishes a file.

  `serve(name, data=None)` lays the entry's file out under the served root (with `data` as its
  bytes when given) and returns (the entry with its URL moved to the server, the served file).
  """
  root = tmp_path / 'served'
  root.mkdir()
  server = http.server.ThreadingHTTPServer(
      ('127.0.0.1', 0), functools.partial(_Handler, directory=str(root)))
  server.hits, server.modes = [], {}
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  monkeypatch.delenv(fetch_mod.MIRROR_ENV)  # download for real

  def serve(name, data=None, publish=True):
    e = pretrained.get(name)
    path = _fake_mirror(root, mirror, e, data) if publish else _mirror_file(root, e)
    local = dataclasses.replace(
        e, url=f'http://127.0.0.1:{server.server_address[1]}/{e.url.split("://", 1)[1]}')
    return local, path

  yield server, serve
  server.shutdown()
  server.server_close()
  thread.join(5)


def _served_key(server, path):
  return str(path.relative_to(pathlib.Path(server.RequestHandlerClass.keywords['directory'])))


def test_download(http_mirror, mirror, own_cache):
  server, serve = http_mirror
  for name in (VIRUS, 'distill/ex2_lizard'):  # '%' and an emoji in the URL
    entry, served = serve(name)
    path = pretrained.fetch(entry, retries=0)
    assert path.is_relative_to(own_cache)
    assert path.read_bytes() == served.read_bytes()
    assert pretrained.verify(entry)
  assert len(server.hits) == 2  # the second fetch of each came from the cache
  assert not [p for p in _files(own_cache) if p.name.endswith('.part')]


def test_download_checksum_mismatch_keeps_nothing(http_mirror, mirror, own_cache):
  server, serve = http_mirror
  good = _mirror_file(mirror, pretrained.get(PERSIST)).read_bytes()
  entry, _ = serve(PERSIST, good[:100] + b'x' + good[101:])
  with pytest.raises(pretrained.ChecksumError, match=entry.sha256):
    pretrained.fetch(entry, retries=0)
  serve(PERSIST, good[:1000])  # a short file, served with its own (honest) length
  with pytest.raises(pretrained.ChecksumError):
    pretrained.fetch(entry, retries=0)
  serve(PERSIST, good + b'trailing')  # too long: stopped early
  with pytest.raises(pretrained.ChecksumError):
    pretrained.fetch(entry, retries=0)
  assert len(server.hits) == 3  # a checksum mismatch is not retried
  assert _files(own_cache) == []


def test_download_truncated_response_is_retried_then_rejected(http_mirror, own_cache):
  server, serve = http_mirror
  entry, served = serve(PERSIST)
  server.modes[_served_key(server, served)] = 'truncate'
  with pytest.raises(pretrained.FetchError, match='after 3 attempts') as err:
    pretrained.fetch(entry, retries=2, backoff=0)
  assert not isinstance(err.value, pretrained.ChecksumError)
  assert len(server.hits) == 3
  assert _files(own_cache) == []


def test_download_retries_transient_errors_and_not_404(http_mirror, own_cache):
  server, serve = http_mirror
  entry, served = serve(PERSIST)
  server.modes[_served_key(server, served)] = 'fail_once'
  assert pretrained.fetch(entry, retries=1, backoff=0).read_bytes() == served.read_bytes()
  assert len(server.hits) == 2
  missing, _ = serve('paper/lizard/growing', publish=False)
  with pytest.raises(pretrained.FetchError, match='HTTP 404'):
    pretrained.fetch(missing, retries=3, backoff=0)
  assert len(server.hits) == 3  # a 404 is not retried


# ------------------------------------------------------------------------------------------
# Targets
# ------------------------------------------------------------------------------------------


@pytest.fixture
def two_tone_png(tmp_path):
  """128 px: left half opaque red, right half blue at alpha 128."""
  a = np.zeros((128, 128, 4), np.uint8)
  a[:, :64] = (255, 0, 0, 255)
  a[:, 64:] = (0, 0, 255, 128)
  path = tmp_path / 'two_tone.png'
  Image.fromarray(a, 'RGBA').save(path)
  return path


def test_load_target_png_path_both_conventions(two_tone_png):
  d = targets.load_target(two_tone_png, 'distill')
  p = targets.load_target(str(two_tone_png), 'paper')
  for t in (d, p):
    assert t.shape == (40, 40, 4) and t.dtype == np.float32
    assert 0.0 <= t.min() and t.max() <= 1.0
    np.testing.assert_allclose(t[20, 5], [1, 0, 0, 1], atol=1e-6)  # opaque red
  half = 128 / 255
  np.testing.assert_allclose(d[20, 35], [0, 0, half, half], atol=1e-6)  # premultiplied: 1 * a
  np.testing.assert_allclose(p[20, 35], [0, 0, 1, half], atol=1e-6)  # straight
  assert targets.load_target(two_tone_png, 'paper', size=20).shape == (20, 20, 4)


def test_load_target_emoji_and_manifest_name(mirror):
  path = _mirror_file(mirror, pretrained.get('noto/1f98e'))
  im = Image.open(path).convert('RGBA')
  for convention in ('distill', 'paper'):
    by_emoji = targets.load_target(LIZARD, convention)
    np.testing.assert_array_equal(by_emoji, targets.load_target('noto/1f98e', convention))
    np.testing.assert_array_equal(by_emoji, targets.load_target(path, convention))
    assert by_emoji.shape == (40, 40, 4)
    assert by_emoji[20, 20, 3] == 1.0 and by_emoji[0, 0, 3] == 0.0  # opaque body, clear corner
  d = targets.load_target(LIZARD, 'distill')
  p = targets.load_target(LIZARD, 'paper')
  thumb = im.copy()
  thumb.thumbnail((40, 40), Image.LANCZOS)
  ref = np.asarray(thumb, np.float32) / 255
  np.testing.assert_allclose(d[..., :3], ref[..., :3] * ref[..., 3:], atol=1e-7)
  np.testing.assert_allclose(d[..., 3], ref[..., 3], atol=1e-7)
  # Paper: torch's bilinear without antialiasing; TF's half-pixel bilinear is the same operation.
  ref = tf.image.resize(np.asarray(im, np.float32)[None], (40, 40), 'bilinear', antialias=False)
  np.testing.assert_allclose(p, ref[0].numpy() / 255, atol=1e-5)  # TF works in float32
  assert (d[..., :3] <= d[..., 3:] + 1e-6).all()  # premultiplied: colour never exceeds alpha
  assert (p[..., :3] > p[..., 3:] + 1e-3).any()  # straight: semi-transparent edges keep colour
  # U+FE0F is dropped, as in noto-emoji's file names.
  np.testing.assert_array_equal(targets.load_target('\U0001F441\uFE0F'),
                                targets.load_target('noto/1f441'))
  assert targets.emoji_code('\U0001F468\u200D\U0001F469') == '1f468_200d_1f469'


def test_paper_resize_does_not_antialias():
  # 512 px -> 40: each output pixel mixes only the 2x2 source pixels around its centre.
  x = np.zeros((512, 512, 4), np.float32)
  src = (np.arange(40) + 0.5) * 12.8 - 0.5  # 5.9, 18.7, ...: between pixels 5 and 6, ...
  x[:, 6] = 255  # a one-pixel line right of output column 0's centre
  x[:, 100] = 255  # a line between two centres (82.7 and 95.5): invisible without antialiasing
  out = targets.resize_bilinear(x, 40)
  np.testing.assert_allclose(out[:, 0], 255 * (src[0] - 5), rtol=1e-5)
  assert not out[:, 1:].any()
  lizard = targets.load_target('paper/images/lizard', 'paper')
  im = Image.open(pretrained.fetch('paper/images/lizard')).convert('RGBA')
  smooth = np.asarray(im.resize((40, 40), Image.BILINEAR), np.float32) / 255
  assert np.abs(lizard - smooth).max() > 0.1  # not PIL's (antialiased) BILINEAR


def test_build_target_pads_to_the_grid():
  t = targets.load_target(LIZARD, 'distill')
  padded = targets.build_target(LIZARD, 'distill')
  assert padded.shape == (72, 72, 4)
  np.testing.assert_array_equal(padded[16:56, 16:56], t)
  assert not padded[:16].any() and not padded[:, 56:].any()
  assert targets.build_target(LIZARD, 'paper').shape == (48, 48, 4)
  # Another grid scales the image and its padding: 24 = 20 + 2 x 2 for the paper's 40 + 2 x 4.
  small = targets.build_target(LIZARD, 'paper', grid=24)
  np.testing.assert_array_equal(small[2:22, 2:22], targets.load_target(LIZARD, 'paper', size=20))
  assert not small[:2].any() and not small[22:].any()


def test_build_target_centres_a_non_square_distill_image(tmp_path):
  # Distill thumbnails keep the aspect ratio: a 64x32 image becomes 40x20, centred on 72x72.
  img = np.zeros([32, 64, 4], np.uint8)
  img[..., 0], img[..., 3] = 200, 255
  path = tmp_path / 'wide.png'
  Image.fromarray(img).save(path)
  t = targets.build_target(str(path), 'distill')
  assert t.shape == (72, 72, 4)
  alpha = t[..., 3] > 0
  rows, cols = np.nonzero(alpha)
  assert (rows.min(), rows.max(), cols.min(), cols.max()) == (26, 45, 16, 55)


def test_self_target_needs_the_organism():
  with pytest.raises(targets.TargetError, match='needs the original'):
    targets.build_target('self:60', 'paper')
  with pytest.raises(targets.TargetError, match='integer'):
    targets.build_target('self:x', 'paper', original=pretrained.load('paper/lizard/persist'))


@pytest.mark.slow
def test_self_target_is_the_grown_organism():
  ca = pretrained.load('paper/lizard/persist')
  t = targets.build_target('self:60', 'paper', original=ca)
  assert t.shape == (48, 48, 4) and 0.0 <= t.min() and t.max() <= 1.0
  alive = (t[..., 3] > 0.1).sum()
  # A persistent lizard at step 60: a body of a few hundred cells, centred, not the whole grid.
  assert 150 < alive < 900, alive
  assert t[24, 24, 3] > 0.5 and not t[0].any()


def test_cut_alpha_empties_the_faint_cells():
  t = np.array([[[0.2, 0.4, 0.6, 0.05], [0.9, 0.1, 0.3, 0.29]],
                [[0.5, 0.5, 0.5, 0.3], [0.1, 0.2, 0.3, 1.0]]], np.float32)
  out = targets.cut_alpha(t, 0.3)
  np.testing.assert_array_equal(out[0], np.zeros([2, 4]))  # alpha 0.05 and 0.29: emptied
  np.testing.assert_array_equal(out[1], t[1])  # alpha 0.3 (the cut itself) and 1: kept
  np.testing.assert_array_equal(targets.cut_alpha(t, 0.0), t)


def test_target_errors(tmp_path):
  with pytest.raises(targets.TargetError, match='no such file'):
    targets.load_target(str(tmp_path / 'missing.png'))
  text = tmp_path / 'x.png'
  text.write_text('not a picture')
  with pytest.raises(targets.TargetError, match='x.png is not a readable image'):
    targets.load_target(text)
  with pytest.raises(targets.TargetError, match='not a readable image'):
    targets.load_target(str(text), 'paper')
  with pytest.raises(targets.TargetError, match='1f996.*pass a PNG path'):
    targets.load_target('\U0001F996')
  with pytest.raises(targets.TargetError, match='not a target image'):
    targets.load_target(PERSIST)
  with pytest.raises(targets.TargetError, match='paper/images/lizard'):
    targets.load_target('paper/images/lizrd')
  assert issubclass(targets.TargetError, ValueError)


# ------------------------------------------------------------------------------------------
# The command line
# ------------------------------------------------------------------------------------------


def _cli(*args, env=None):
  return subprocess.run([sys.executable, '-m', 'tools.pretrained', *args], cwd=REPO,
                        capture_output=True, text=True, timeout=300,
                        env={**os.environ, 'TF_CPP_MIN_LOG_LEVEL': '3', **(env or {})})


@pytest.mark.slow
def test_cli_verify_and_list():
  r = _cli('verify')
  assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
  assert f'{len(pretrained.entries())} entries verified' in r.stdout
  r = _cli('list')
  assert r.returncode == 0, r.stderr[-2000:]
  lines = r.stdout.splitlines()
  assert lines[0].split() == ['name', 'format', 'convention', 'role', 'organism']
  listed = {line.split()[0] for line in lines[1:]}
  assert listed == {e.name for e in pretrained.entries()}
  assert [l.split() for l in lines if l.startswith(PERSIST + ' ')] == [
      [PERSIST, 'pt', 'paper', 'persistent', 'lizard']]


@pytest.mark.slow
def test_cli_verify_failure_exits_nonzero(mirror, tmp_path):
  entry = pretrained.get(PERSIST)
  fake = tmp_path / 'fake_mirror'
  _fake_mirror(fake, mirror, entry, b'corrupt')
  r = _cli('verify', PERSIST, 'distill/ex2_lizard',
           env={fetch_mod.MIRROR_ENV: str(fake), fetch_mod.CACHE_ENV: str(tmp_path / 'c')})
  assert r.returncode == 1
  assert f'{PERSIST}: checksum mismatch' in r.stderr
  assert 'distill/ex2_lizard: ' in r.stderr and 'not in the mirror' in r.stderr
  r = _cli('verify', 'paper/lizard/persit')
  assert r.returncode == 2 and 'paper/lizard/persist' in r.stderr
