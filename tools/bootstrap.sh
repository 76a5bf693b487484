#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine with Python >= 3.11; safe to re-run.
#   --browser  also Debian's chromium, which the browser tests drive
#   --node     only check that Node.js and npm are new enough to build the web UI
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_MIN_MAJOR=20
NODE_MIN_MINOR=19

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get install -y -qq "$@" >/dev/null 2>&1 \
    || { as_root apt-get update -qq >/dev/null && as_root apt-get install -y -qq "$@" >/dev/null; }
}

check_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "bootstrap: Node.js >= $NODE_MIN_MAJOR.$NODE_MIN_MINOR with npm is needed to build the web UI;" \
      "install it (e.g. Debian 13: apt-get install nodejs npm)" >&2
    exit 1
  fi
  local version major minor
  version=$(node --version | sed 's/^v//')
  major=${version%%.*}
  minor=$(echo "$version" | cut -d. -f2)
  if [ "$major" -lt "$NODE_MIN_MAJOR" ] || { [ "$major" -eq "$NODE_MIN_MAJOR" ] && [ "$minor" -lt "$NODE_MIN_MINOR" ]; }; then
    echo "bootstrap: Node.js $version is too old for the web UI's build; $NODE_MIN_MAJOR.$NODE_MIN_MINOR or newer is needed" >&2
    exit 1
  fi
}

if [ "${1:-}" = "--node" ]; then
  check_node
  exit 0
fi

if ! command -v uv >/dev/null 2>&1 && [ ! -x "$HOME/.local/bin/uv" ]; then
  echo "bootstrap: installing uv" >&2
  python3 -m pip install --quiet --user uv 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages uv 2>/dev/null \
    || python3 -m pip install --quiet uv
fi
UV=$(command -v uv || echo "$HOME/.local/bin/uv")
"$UV" sync --frozen --quiet

if [ "${1:-}" = "--browser" ] && [ ! -x /usr/bin/chromium ]; then
  echo "bootstrap: installing chromium (browser tests)" >&2
  apt_install chromium
fi
