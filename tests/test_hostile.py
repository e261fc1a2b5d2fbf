"""Hostile files, lost state and oversized input: nothing runs, nothing is lost, one clear error.

Memory is measured in a subprocess (`resource.getrusage`), as the growth of its peak RSS over
the reading alone (TensorFlow's import is a few hundred MB by itself).
"""

import json
import os
import pathlib
import pickle
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib

import numpy as np
import pytest
import tensorflow as tf

from tf_multinca import configs, hub, registry, weights_file
from tf_multinca.model import CAModel
from tf_multinca.pretrained import formats
from tf_multinca.training import loop

REPO = pathlib.Path(__file__).resolve().parents[1]

_MEASURE = r'''
import json, resource, sys, time
import tf_multinca.{module} as target
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.time()
try:
  target.{call}
  outcome = 'accepted'
except Exception as e:
  outcome = type(e).__name__ + ': ' + str(e)
grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps(dict(outcome=outcome, seconds=time.time() - t, grew_mb=grew / 1024)))
'''


def measured(module, call, tmp_path, timeout=120):
  """Runs `<module>.<call>` in a fresh interpreter; returns its outcome, seconds and MB."""
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  p = subprocess.run([sys.executable, '-c', _MEASURE.format(module=module, call=call)],
                     cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
  assert p.returncode == 0, p.stderr[-2000:]
  return json.loads(p.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------------------------
# Loading runs no code.

def _saved_model_that_writes(path, victim):
  """A TF1 SavedModel whose main_op writes `victim` when loaded (what an attacker can ship)."""
  graph = tf.Graph()
  with graph.as_default():
    write = tf.io.write_file(str(victim), 'owned')
    with tf.compat.v1.Session(graph=graph) as sess:
      builder = tf.compat.v1.saved_model.Builder(str(path))
      builder.add_meta_graph_and_variables(sess, ['serve'], main_op=write)
      builder.save()


@pytest.mark.slow
def test_a_saved_model_is_never_loaded(tmp_path):
  victim = tmp_path / 'victim.txt'
  crafted = tmp_path / 'crafted'
  _saved_model_that_writes(crafted, victim)
  # The attack is real: TensorFlow's own loader runs it.
  tf.saved_model.load(str(crafted))
  assert victim.read_text() == 'owned'
  victim.unlink()
  workdir = tmp_path / 'workdir'  # a "training workdir" holding only the crafted export
  _saved_model_that_writes(workdir / 'export' / 'saved_model', victim)
  for name in (crafted, workdir):
    with pytest.raises(hub.HubError, match='SavedModels are not loaded|not a'):
      hub.load(name)
  p = subprocess.run([sys.executable, '-m', 'tools.takeover', f'--original={crafted}',
                      f'--workdir={tmp_path / "out"}'], cwd=REPO, capture_output=True,
                     text=True, timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
  assert p.returncode == 2 and 'SavedModels are not loaded' in p.stderr
  assert not victim.exists()


# ----------------------------------------------------------------------------------------------
# Bounded readers.

def _pt_zip(path, pickled, extra=()):
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as zf:
    zf.writestr('archive/data.pkl', pickled)
    for name, data in extra:
      zf.writestr(name, data)
  return path


class _LaughPickler(pickle.Pickler):
  """Pickles a marker as a persistent id that is a tuple doubling 64 times (shared by memo)."""
  marker = object()

  def persistent_id(self, obj):
    if obj is self.marker:
      laughs = ('lol',)
      for _ in range(64):
        laughs = (laughs, laughs)
      return laughs
    return None


@pytest.mark.slow
def test_billion_laughs_pt_is_refused_fast_and_small(tmp_path):
  import io
  buf = io.BytesIO()
  _LaughPickler(buf, protocol=2).dump({'layers.0.weight': _LaughPickler.marker})
  path = _pt_zip(tmp_path / 'laughs.pt', buf.getvalue())
  assert path.stat().st_size < 40_000
  out = measured('pretrained.formats', f'read_pt({str(path)!r})', tmp_path)
  assert out['outcome'].startswith('UnsafePickleError: refused persistent id tuple')
  assert len(out['outcome']) < 200  # a short description, not the structure's repr
  assert out['seconds'] < 1.0 and out['grew_mb'] < 200, out


def _zero_member(zf, name, nbytes):
  with zf.open(name, 'w', force_zip64=True) as f:
    chunk = bytes(1 << 20)
    for _ in range(nbytes >> 20):
      f.write(chunk)


def _storage_pickle():
  """{'layers.0.weight': persistent_load(('storage', torch.FloatStorage, '0', 'cpu', 6144))},
  written opcode by opcode (protocol 2), as torch's zip format pickles a storage."""
  def text(s):
    return b'X' + struct.pack('<I', len(s)) + s.encode()
  return (b'\x80\x02}q\x00' + text('layers.0.weight') + b'(' + text('storage') +
          b'ctorch\nFloatStorage\n' + text('0') + text('cpu') + b'M\x00\x18tQs.')


@pytest.mark.slow
@pytest.mark.parametrize('member', ['archive/byteorder', 'archive/data.pkl', 'archive/data/0'])
def test_zip_bomb_members_are_refused_from_their_size(tmp_path, member):
  path = tmp_path / 'bomb.pt'
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as zf:
    if member != 'archive/data.pkl':
      zf.writestr('archive/data.pkl', _storage_pickle())
    _zero_member(zf, member, 256 << 20)
  assert path.stat().st_size < 2_000_000
  out = measured('pretrained.formats', f'read_pt({str(path)!r})', tmp_path)
  assert out['outcome'].startswith('WeightFormatError') and 'more than a rule' in out['outcome']
  assert out['seconds'] < 2.0 and out['grew_mb'] < 200, out


def test_the_storage_pickle_of_these_tests_is_read_when_its_storage_is_sane(tmp_path):
  # The bombs above fail on their size, not on a broken pickle: with a real storage it loads
  # (and only the shapes are then wrong: one tensor of four).
  path = tmp_path / 'ok.pt'
  with zipfile.ZipFile(path, 'w') as zf:
    zf.writestr('archive/data.pkl', _storage_pickle())
    zf.writestr('archive/data/0', np.zeros(6144, '<f4').tobytes())
  with pytest.raises(formats.WeightFormatError, match='is not a tensor'):
    formats.read_pt(path)


def _webgl(tmp_path, **changes):
  ca = CAModel(convention='distill', init_seed=0)
  path = tmp_path / 'm.json'
  formats.write_webgl_json(ca.get_rule_weights(), path)
  layers = json.loads(path.read_text())
  layers[0].update(changes)
  path.write_text(json.dumps(layers))
  return path


def test_webgl_scale_that_would_overflow_is_refused(tmp_path):
  path = _webgl(tmp_path, weight_scale=1e308)
  with pytest.raises(formats.WeightFormatError, match='magnitude at most'):
    formats.read_webgl_json(path)
  assert np.isfinite(formats.read_webgl_json(_webgl(tmp_path, weight_scale=3.0))[
      'conv1/kernel']).all()


def test_deeply_nested_webgl_json_is_one_error(tmp_path):
  path = tmp_path / 'deep.json'
  path.write_text('[' * 100_000 + ']' * 100_000)
  with pytest.raises(formats.WeightFormatError, match='nested too deeply'):
    formats.read_webgl_json(path)


def _huge_png(path, side):
  """A valid RGBA PNG of side x side transparent pixels, written row by row (small file)."""
  def chunk(kind, data):
    return struct.pack('>I', len(data)) + kind + data + struct.pack(
        '>I', zlib.crc32(kind + data) & 0xffffffff)
  z = zlib.compressobj(9)
  row = bytes(1 + 4 * side)
  idat = b''.join(z.compress(row) for _ in range(side)) + z.flush()
  ihdr = struct.pack('>IIBBBBB', side, side, 8, 6, 0, 0, 0)
  path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) + chunk(b'IDAT', idat) +
                   chunk(b'IEND', b''))
  return path


@pytest.mark.slow
def test_a_12000_pixel_png_is_refused_before_decoding(tmp_path):
  path = _huge_png(tmp_path / 'huge.png', 12000)
  assert path.stat().st_size < 1_000_000
  out = measured('targets', f'load_target({str(path)!r}, "paper")', tmp_path)
  assert out['outcome'].startswith('TargetError') and '12000x12000' in out['outcome']
  assert out['grew_mb'] < 500 and out['seconds'] < 2.0, out


def test_targets_without_alpha_or_fully_transparent_are_refused(tmp_path):
  from PIL import Image
  from tf_multinca import targets
  Image.new('RGB', (8, 8), 'red').save(tmp_path / 'rgb.png')
  Image.new('RGBA', (8, 8), (255, 0, 0, 0)).save(tmp_path / 'clear.png')
  with pytest.raises(targets.TargetError, match='no alpha channel'):
    targets.load_target(str(tmp_path / 'rgb.png'))
  with pytest.raises(targets.TargetError, match='fully transparent'):
    targets.load_target(str(tmp_path / 'clear.png'))


@pytest.mark.slow
def test_too_many_seeds_is_refused_before_allocating(tmp_path):
  p = subprocess.run([sys.executable, '-m', 'tools.takeover', '--pairing=lizard_red',
                      '--seeds=100000', f'--workdir={tmp_path}'], cwd=REPO, capture_output=True,
                     text=True, timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
  assert p.returncode == 2 and 'GiB' in p.stderr and 'use fewer seeds' in p.stderr


# ----------------------------------------------------------------------------------------------
# Checkpoints you can trust.

def _train(work, steps, lines=None):
  c = configs.get_config('lizard_red_testing', [f'steps={steps}', 'eval_every=0',
                                                'keep_checkpoints=5'])
  return loop.train(c, work, log=(lines.append if lines is not None else lambda m: None))


@pytest.mark.slow
def test_missing_state_file_and_corrupt_latest_are_recovered(tmp_path):
  work = tmp_path / 'run'
  _train(work, 6)
  ckpts = work / 'checkpoints'
  kept = {p.name: p.read_bytes() for p in ckpts.glob('ckpt-[24].*')}
  (ckpts / 'checkpoint').unlink()
  lines = []
  _train(work, 8, lines)
  log = '\n'.join(lines)
  assert 'state file' in log and f'resumed from {ckpts / "ckpt-6"} at step 6' in log
  for name, data in kept.items():  # nothing trained over, nothing overwritten
    assert (ckpts / name).read_bytes() == data, name
  # A bit-flipped newest checkpoint: set aside, the one before is used.
  data = next(ckpts.glob('ckpt-8.data-*'))
  raw = bytearray(data.read_bytes())
  raw[len(raw) // 2] ^= 0xff
  data.write_bytes(bytes(raw))
  lines = []
  _train(work, 10, lines)
  log = '\n'.join(lines)
  assert 'ckpt-8 is unreadable' in log and f'resumed from {ckpts / "ckpt-6"} at step 6' in log
  assert list(ckpts.glob('corrupt-ckpt-8.*'))
  assert json.loads((work / 'metrics.json').read_text())['steps'] == 10


@pytest.mark.slow
def test_temporaries_of_a_killed_run_are_cleaned(tmp_path):
  from tf_multinca import fileio
  (tmp_path / 'export').mkdir()
  (tmp_path / 'checkpoints' / 'ckpt-36_temp' / 'part').mkdir(parents=True)
  (tmp_path / 'export' / '.saved_model.k2j4l5m6').mkdir()
  (tmp_path / '.metrics.json.abcd1234').write_text('{')
  keep = [tmp_path / 'metrics.json', tmp_path / 'export' / 'adversary.weights.h5']
  for k in keep:
    k.write_text('x')
  removed = fileio.remove_temporaries(tmp_path, tmp_path / 'export', tmp_path / 'checkpoints')
  assert sorted(p.name for p in removed) == ['.metrics.json.abcd1234', '.saved_model.k2j4l5m6',
                                             'ckpt-36_temp']
  assert all(k.exists() for k in keep)


@pytest.mark.slow
def test_a_registration_cannot_shadow_a_published_name(tmp_path):
  h5 = weights_file.save(CAModel(convention='paper'), tmp_path / 'm.weights.h5')
  for name in ('paper/lizard/persist', 'paper/lizard/mine', 'results/lizard_red'):
    with pytest.raises(registry.RegistryError, match='shadow'):
      registry.register(name, h5, convention='paper', manifest=tmp_path / 'local.json')
  p = subprocess.run([sys.executable, '-m', 'tools.train_nca',
                      '--config=nca_paper_persistent_testing', '--register=paper/lizard/persist',
                      f'--workdir={tmp_path / "run"}'], cwd=REPO, capture_output=True, text=True,
                     timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
  assert p.returncode == 2 and 'shadow' in p.stderr and not (tmp_path / 'run').exists()


@pytest.mark.slow
def test_unfittable_square_in_training_exits_2_before_training(tmp_path):
  p = subprocess.run([sys.executable, '-m', 'tools.train_adversary',
                      '--config=lizard_red_testing', '--set=injection=square:40',
                      f'--workdir={tmp_path / "run"}'], cwd=REPO, capture_output=True, text=True,
                     timeout=120, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
  assert p.returncode == 2 and 'fits inside no organism' in p.stderr
  assert not (tmp_path / 'run').exists()


@pytest.mark.slow
def test_ctrl_c_stops_training_with_one_line_and_exit_130(tmp_path):
  work = tmp_path / 'run'
  # The child starts as from a terminal, with SIGINT at its default. A test runner launched in
  # the background of a script (`bash .ci/run &`) has SIGINT ignored, and an ignored signal
  # stays ignored across exec, so the child would rightly not hear Ctrl-C; a Python handler
  # here becomes SIG_DFL in the exec'd child.
  previous = signal.signal(signal.SIGINT, signal.default_int_handler)
  try:
    proc = subprocess.Popen([sys.executable, '-m', 'tools.train_adversary',
                             '--config=lizard_red_testing', '--set=steps=100000',
                             '--set=eval_every=0', f'--workdir={work}'], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3'))
  finally:
    signal.signal(signal.SIGINT, previous)
  try:
    deadline = time.time() + 120
    for line in proc.stdout:
      if line.startswith('step 5/') or time.time() > deadline:
        break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
  finally:
    proc.kill()
  assert proc.returncode == 130, err[-2000:]
  last = [l for l in err.strip().splitlines() if l.strip()][-1]
  assert last.startswith('interrupted at step ') and 'rerun the same command' in last
  assert 'Traceback' not in err
  assert list((work / 'checkpoints').glob('ckpt-*.index'))


def test_no_dns_fails_at_once_with_the_mirror_hint(tmp_path, monkeypatch):
  import socket
  import requests
  from tf_multinca import pretrained
  calls = []

  def no_dns(url, **kwargs):
    calls.append(url)
    try:
      raise socket.gaierror(-3, 'Temporary failure in name resolution')
    except socket.gaierror as e:
      raise requests.ConnectionError(f'Max retries exceeded with url: {url}') from e

  monkeypatch.delenv('TF_MULTINCA_MIRROR', raising=False)
  monkeypatch.setattr(requests, 'get', no_dns)
  t = time.time()
  with pytest.raises(pretrained.FetchError, match='cannot be resolved.*TF_MULTINCA_MIRROR'):
    pretrained.fetch('paper/images/lizard', tmp_path / 'cache', retries=3, backoff=5.0)
  assert len(calls) == 1 and time.time() - t < 1.0  # no retries, no back-off


def test_a_cache_that_cannot_be_written_is_one_clear_error(tmp_path):
  from tf_multinca import pretrained
  blocker = tmp_path / 'file'
  blocker.write_text('not a directory')
  with pytest.raises(pretrained.FetchError, match='cannot write .* into the cache'):
    pretrained.fetch('paper/images/lizard', blocker / 'cache')
