#!/usr/bin/env bash
# Install what the real-browser and glTF-validator tests use, once per machine:
#   - Debian's chromium (headless, software WebGL) at /usr/bin/chromium;
#   - npm's gltf-validator and three.js into .tools/node_modules (not committed).
# Tests that need them skip with a clear reason where they are absent; CI (scripts/test.sh) runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "install_browser: no chromium and no root apt-get; browser tests will be skipped" >&2
  fi
fi
if command -v npm >/dev/null 2>&1; then
  mkdir -p .tools
  if [ ! -d .tools/node_modules/gltf-validator ] || [ ! -d .tools/node_modules/three ]; then
    (cd .tools && [ -f package.json ] || echo '{"private": true}' > package.json
     npm install --silent --no-audit --no-fund gltf-validator@2.0.0-dev.3.10 three@0.170.0 >/dev/null)
  fi
else
  echo "install_browser: no npm; glTF validator tests will be skipped" >&2
fi
