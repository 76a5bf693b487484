#!/usr/bin/env bash
# Builds the one deploy artifact, as the deploy workflow does:
#   deploy/build-artifact.sh --out DIR [--sha SHA]   ->  DIR/obd2-dashboard-<sha>.tar.gz
# Inside: the server's wheels, the locked third-party packages (pylock.toml, with hashes), the web UI build
# (apps/web/dist, when it has been built), infra/, deploy/, doc/ and a REVISION file.
# Run from anywhere in the repository; needs uv.
set -euo pipefail

out="" sha=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --sha) sha="$2"; shift 2 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "build-artifact: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "build-artifact: --out DIR is required" >&2; exit 2; }

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -n "$sha" ] || sha=$(git rev-parse HEAD)
[[ "$sha" =~ ^[0-9a-f]{7,40}$ ]] || { echo "build-artifact: --sha must be a hex commit id" >&2; exit 2; }
UV=${UV:-$(command -v uv || echo "$HOME/.local/bin/uv")}

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
if [ -f apps/web/dist/index.html ]; then
  mkdir -p "$stage/$name/apps/web"
  cp -R apps/web/dist "$stage/$name/apps/web/dist"
else
  echo "build-artifact: no apps/web/dist (web UI not built): the artifact serves the API only" >&2
fi
echo "$sha" > "$stage/$name/REVISION"

tar -C "$stage" -czf "$out/$name.tar.gz.partial" "$name"
mv "$out/$name.tar.gz.partial" "$out/$name.tar.gz"
echo "$out/$name.tar.gz"
