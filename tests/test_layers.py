"""The library's import graph: one-way layers (WORKSPACE.md), no cycles, no hidden imports."""

import ast
import os
import pathlib
import re
import subprocess
import sys
import types

import pytest

from tf_multinca import quiet

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / 'tf_multinca'

# WORKSPACE.md's layers, lowest first: a module may import its own layer and those below.
LAYERS = (
    ('core', {'layout', 'conventions', 'errors', 'limits', 'text', 'quiet', 'perception',
              'fast', 'model', 'multi', 'injection', 'damage', 'metrics', 'rollout'}),
    # The readers of the published files are I/O; `pretrained` itself (load by manifest name)
    # is part of the hub.
    ('io', {'fileio', 'figures', 'render', 'targets', 'saved_model', 'tfjs', 'export', 'pretrained.fetch',
            'pretrained.manifest', 'pretrained.formats'}),
    ('hub', {'pretrained', 'weights_file', 'registry', 'zoo', 'hub'}),
    ('experiments', {'takeover', 'report', 'grow_report', 'generalisation', 'race'}),
    ('training', {'training', 'configs'}),
    ('benchmarks', {'bench'}),  # it times the training step too
    ('binaries', {'apps', 'binary'}),
)


def _modules():
  """{dotted module name: path} of every module of the package."""
  out = {}
  for path in sorted(PACKAGE.rglob('*.py')):
    parts = path.relative_to(PACKAGE.parent).with_suffix('').parts
    if parts[-1] == '__init__':
      parts = parts[:-1]
    out['.'.join(parts)] = path
  return out


def _imports(tree, modules, top_level_only):
  """The package modules a parsed file imports (`from a import b` counts `a.b` if a module)."""
  nodes = tree.body if top_level_only else ast.walk(tree)
  found = set()
  for node in nodes:
    if isinstance(node, ast.Import):
      found |= {a.name for a in node.names if a.name.startswith('tf_multinca')}
    elif isinstance(node, ast.ImportFrom) and (node.module or '').startswith('tf_multinca'):
      for a in node.names:
        sub = f'{node.module}.{a.name}'
        found.add(sub if sub in modules else node.module)
  return found


def _graph():
  modules = _modules()
  return modules, {name: _imports(ast.parse(path.read_text('utf-8')), modules, True)
                   for name, path in modules.items()}


def _layer(module):
  parts = module.split('.')[1:]
  if not parts:
    return -1  # the package's __init__: the public API above everything
  for n in range(len(parts), 0, -1):  # the longest listed prefix: 'pretrained.fetch' first
    for i, (_, names) in enumerate(LAYERS):
      if '.'.join(parts[:n]) in names:
        return i
  raise AssertionError(f'{module} belongs to no layer of LAYERS: add it (and to WORKSPACE.md)')


def test_every_module_has_a_layer_and_imports_only_downwards():
  modules, graph = _graph()
  upward = []
  for name, deps in graph.items():
    if name == 'tf_multinca':
      continue
    mine = _layer(name)
    for dep in deps:
      if dep != 'tf_multinca' and _layer(dep) > mine:
        upward.append(f'{name} ({LAYERS[mine][0]}) imports {dep} ({LAYERS[_layer(dep)][0]})')
      assert dep != 'tf_multinca', f'{name} imports the package top level (its public API)'
  assert not upward, 'imports against the layers:\n' + '\n'.join(upward)
  assert len(modules) > 40  # the walk found the package


def test_the_import_graph_has_no_cycle():
  _, graph = _graph()
  # Package __init__ files import their submodules; a submodule importing its own package is
  # the same edge the other way, which Python resolves: leave those out of the cycle search.
  edges = {m: {d for d in deps if not m.startswith(d + '.') and not d.startswith(m + '.')}
           for m, deps in graph.items()}
  state, path = {}, []

  def visit(m):
    state[m] = 'open'
    path.append(m)
    for d in sorted(edges.get(m, ())):
      if state.get(d) == 'open':
        raise AssertionError('import cycle: ' + ' -> '.join(path[path.index(d):] + [d]))
      if d not in state:
        visit(d)
    path.pop()
    state[m] = 'done'

  for m in sorted(edges):
    if m not in state:
      visit(m)


def test_no_function_level_import_of_the_package():
  modules = _modules()
  hidden = []
  for name, path in modules.items():
    tree = ast.parse(path.read_text('utf-8'))
    nested = _imports(tree, modules, False) - _imports(tree, modules, True)
    if nested:
      hidden.append(f'{name}: {sorted(nested)}')
  assert not hidden, 'imports inside functions (move them to the top):\n' + '\n'.join(hidden)


@pytest.mark.parametrize('module', sorted(_modules()))
def test_each_module_states_its_job_in_its_first_docstring_line(module):
  doc = ast.get_docstring(ast.parse(_modules()[module].read_text('utf-8')))
  assert doc and doc.splitlines()[0].strip(), f'{module} has no docstring'


# ----------------------------------------------------------------------------------------------
# Quiet binaries (tf_multinca.quiet runs in the package's __init__, before TensorFlow loads).

def test_binaries_alone_are_quieted():
  binary = types.SimpleNamespace(__spec__=types.SimpleNamespace(name='tools.takeover'))
  script = types.SimpleNamespace(__spec__=None)
  env = {}
  assert quiet.apply(['/repo/tools/takeover.py', '--seeds=1'], binary, env)
  assert env == {'TF_CPP_MIN_LOG_LEVEL': '3'}
  env = {}
  assert quiet.apply(['/venv/bin/tf-multinca-train-adversary'], script, env) and env
  for argv in (['x', '--verbosity=1'], ['x', '-v', '1'], ['x', '--v=2']):
    env = {}
    assert not quiet.apply(argv, binary, env) and env == {}  # the user asked for TF's logs
  env = {'TF_CPP_MIN_LOG_LEVEL': '0'}
  assert not quiet.apply(['x'], binary, env) and env['TF_CPP_MIN_LOG_LEVEL'] == '0'
  env = {'TF_CPP_MIN_LOG_LEVEL': '2'}
  assert quiet.apply(['x'], binary, env) and env['TF_CPP_MIN_LOG_LEVEL'] == '2'
  env = {}
  assert not quiet.apply(['python', 'notebook.py'], script, env) and env == {}  # a library user


@pytest.mark.slow
def test_a_binary_prints_its_own_lines_only():
  env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}
  cmd = [sys.executable, '-m', 'tools.train_adversary', '--list_configs']
  p = subprocess.run(cmd, cwd=PACKAGE.parent, env=env, capture_output=True, text=True,
                     timeout=120)
  assert p.returncode == 0, p.stderr[-2000:]
  noise = [l for l in (p.stdout + p.stderr).splitlines()
           if re.match(r'[IWE]\d{4} |WARNING: All log messages|To enable the following', l)]
  assert not noise, noise
  loud = subprocess.run(cmd + ['--verbosity=0'], cwd=PACKAGE.parent, env=env,
                        capture_output=True, text=True, timeout=120)
  assert 'oneDNN' in loud.stderr or 'cpu_feature_guard' in loud.stderr  # asked for: shown
