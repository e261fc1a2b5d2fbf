#!/usr/bin/env bash
# Installs what the TF.js export and the web tests need (tests/test_export.py, tests/test_web.py):
#   - the TF.js converter, tensorflowjs==4.22.0, with --no-deps: its declared dependencies
#     (tf_keras, jax, tensorflow_decision_forests, tensorflow_hub, ...) would downgrade
#     TensorFlow; tf_multinca.tfjs stands in for the ones the converter imports but never uses;
#   - Node >= 18 and tools/web/node_modules (npm ci: pure @tensorflow/tfjs + the wasm backend);
#   - a headless Chromium (Debian's chromium-headless-shell) for the demo page test.
# Idempotent: each step is skipped when already satisfied (2-5 s then).
# Measured on Debian 12 with Node 20 preinstalled, 2 shared cores, empty apt and npm caches:
# 42 s in all (apt-get update + chromium-headless-shell ~20 s, npm ci ~20 s, pip ~2 s).
# Without Node, apt's nodejs 18 + npm add roughly 20-30 s.
set -euo pipefail
cd "$(dirname "$0")/.."
WEB=tools/web
TFJS_VERSION=4.22.0

apt_install() {
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  if [ -z "${_APT_UPDATED:-}" ]; then
    $SUDO apt-get update -qq
    _APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

# 1. The TF.js converter (Python), without its dependencies; the pure ones it imports.
tfjs_installed="$(python -m pip show tensorflowjs 2>/dev/null || true)"
if ! grep -qx "Version: $TFJS_VERSION" <<<"$tfjs_installed"; then
  python -m pip install -q --no-deps "tensorflowjs==$TFJS_VERSION"
fi
python -c 'import six, packaging, h5py' 2>/dev/null || python -m pip install -q six packaging h5py

# 2. Node >= 18 (node --test) and the page's npm packages, pinned by package-lock.json.
node_major() { node --version 2>/dev/null | sed 's/^v\([0-9]*\).*/\1/'; }
major="$(node_major || true)"
if [ -z "$major" ] || [ "$major" -lt 18 ] || ! command -v npm >/dev/null; then
  apt_install nodejs npm
fi
if [ "$(node_major)" -lt 18 ]; then
  echo "install_web: node $(node --version) is too old; the web tests need Node >= 18" >&2
  exit 1
fi
stamp="$WEB/node_modules/.tf_multinca_lock.sha256"
lock_sum="$(sha256sum "$WEB/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_sum" ]; then
  (cd "$WEB" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$lock_sum" > "$stamp"
fi

# 3. A headless Chromium (as root it runs with --no-sandbox; the tests pass it).
if ! command -v chromium-headless-shell >/dev/null && ! command -v chromium >/dev/null \
    && [ -z "${CHROME_BIN:-}" ]; then
  apt_install chromium-headless-shell || apt_install chromium
fi
echo "install_web: tensorflowjs $TFJS_VERSION, node $(node --version), $WEB/node_modules," \
  "$(command -v chromium-headless-shell || command -v chromium || echo "$CHROME_BIN")"
