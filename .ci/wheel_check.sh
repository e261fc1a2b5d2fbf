#!/usr/bin/env bash
# The built wheel works outside the repository: a fresh venv (TensorFlow and the other
# dependencies from the system site, the package itself only from the wheel), run from /tmp.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python -m pip wheel -q --no-deps --no-build-isolation -w "$tmp/dist" .
rm -rf build  # the build tree setuptools leaves in the checkout
python -m venv --system-site-packages "$tmp/venv"
"$tmp/venv/bin/pip" install -q --no-deps "$tmp"/dist/*.whl
cd "$tmp"
"$tmp/venv/bin/python" - <<'PY'
import pathlib, sys, zipfile
import tf_multinca
where = pathlib.Path(tf_multinca.__file__).resolve()
assert str(where).startswith(str(pathlib.Path(sys.prefix).resolve())), f'not the wheel: {where}'
wheel = next(pathlib.Path('dist').glob('*.whl'))
names = zipfile.ZipFile(wheel).namelist()
assert 'tf_multinca/pretrained/manifest.json' in names, 'the manifest is not package data'
assert not any(n.startswith('tools/') for n in names), 'a top-level tools package'
ca = tf_multinca.load('paper/lizard/persist')
pair = tf_multinca.load_pairing('lizard_red')
result = tf_multinca.run_takeover(pair.original, pair.adversary, pair.injection,
                                  pair.target_array, steps_after=60, seeds=2)
print('wheel:', where.parent, '| takeover at step 120:', result.at(120))
PY
"$tmp/venv/bin/tf-multinca-takeover" --pairing=lizard_red --seeds=2 --steps_after=40 \
    --workdir="$tmp/out" > "$tmp/takeover.log"
test -s "$tmp/out/lizard_red_strip.png"
echo "wheel check: ok ($(tail -n 1 "$tmp/takeover.log"))"
