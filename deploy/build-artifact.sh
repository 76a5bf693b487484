#!/usr/bin/env bash
# Builds the one deploy artifact, as the deploy workflow does:
#   deploy/build-artifact.sh --out DIR [--sha SHA] [--no-web]  ->  DIR/obd2-dashboard-<sha>.tar.gz
# Inside: the server's wheels, the locked third-party packages (pylock.toml, with hashes), the web
# UI build (apps/web/dist), infra/, deploy/, doc/ and a REVISION file.
# The web UI is built first when apps/web/dist is missing or older than its sources (npm ci, then
# npm run build; needs Node.js and npm, NPM names another npm); without an index.html after that
# the build fails. --no-web builds an artifact that serves the API only, on purpose.
# Run from anywhere in the repository; needs uv. Prints the artifact's path on its last line.
set -euo pipefail

out="" sha="" web=1
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --sha) sha="$2"; shift 2 ;;
    --no-web) web=0; shift ;;
    -h|--help) sed -n '2,/^set -e/{/^#/p}' "$0"; exit 0 ;;
    *) echo "build-artifact: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "build-artifact: --out DIR is required" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -n "$sha" ] || sha=$(git rev-parse HEAD)
[[ "$sha" =~ ^[0-9a-f]{7,40}$ ]] || { echo "build-artifact: --sha must be a hex commit id" >&2; exit 2; }
UV=${UV:-$(command -v uv || echo "$HOME/.local/bin/uv")}
NPM=${NPM:-npm}

# -- the web UI ---------------------------------------------------------------------------------
webdir=apps/web
if [ "$web" = 1 ]; then
  sources=()
  for source in src public index.html package.json package-lock.json vite.config.ts tsconfig.json; do
    [ ! -e "$webdir/$source" ] || sources+=("$webdir/$source")
  done
  if [ ! -f "$webdir/dist/index.html" ]; then
    stale="apps/web/dist/index.html is missing"
  elif [ -n "$(find "${sources[@]}" -newer "$webdir/dist/index.html" -print -quit)" ]; then
    stale="apps/web/dist is older than its sources"
  else
    stale=""
  fi
  if [ -n "$stale" ]; then
    echo "build-artifact: building the web UI ($stale)" >&2
    # npm writes progress to stdout: this script's stdout is the artifact's path only.
    "$NPM" ci --prefix "$webdir" --no-audit --no-fund --loglevel=error >&2 \
      || { echo "build-artifact: npm ci in $webdir failed" >&2; exit 1; }
    "$NPM" run build --prefix "$webdir" >&2 \
      || { echo "build-artifact: the web UI build failed" >&2; exit 1; }
  fi
  if [ ! -f "$webdir/dist/index.html" ]; then
    echo "build-artifact: no $webdir/dist/index.html after the web UI build: nginx would answer 404 for /" \
      "(--no-web builds an API-only artifact on purpose)" >&2
    exit 1
  fi
fi

mkdir -p "$out"
out=$(cd "$out" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
name="obd2-dashboard-$sha"
mkdir -p "$stage/$name/wheels"

for package in obd2-protocol obd2-dashboard; do
  "$UV" build --quiet --package "$package" --wheel --out-dir "$stage/$name/wheels"
done
# PEP 751 lock of the third-party packages: exact files and hashes, no resolution on the VPS.
"$UV" export --quiet --frozen --no-dev --package obd2-dashboard --no-emit-workspace \
  --format pylock.toml --output-file "$stage/$name/pylock.toml" >/dev/null

cp -R infra deploy doc "$stage/$name/"
find "$stage/$name/infra" -name tests -type d -prune -exec rm -rf {} +
find "$stage/$name" -name __pycache__ -type d -prune -exec rm -rf {} +
if [ "$web" = 1 ]; then
  mkdir -p "$stage/$name/apps/web"
  cp -R "$webdir/dist" "$stage/$name/apps/web/dist"
else
  echo "build-artifact: --no-web: the artifact serves the API only (no apps/web/dist)" >&2
fi
echo "$sha" > "$stage/$name/REVISION"

tar -C "$stage" -czf "$out/$name.tar.gz.partial" "$name"
mv "$out/$name.tar.gz.partial" "$out/$name.tar.gz"
echo "$out/$name.tar.gz"
