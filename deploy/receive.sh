#!/usr/bin/env bash
# The deploy key's forced command: receives one artifact on stdin and deploys it. Installed on
# the VPS as /usr/local/bin/obd2-dashboard-receive (root-owned, 0755) and named in the deploy
# user's ~/.ssh/authorized_keys, so that the key can do this and nothing else (no shell, no
# other command, no forwarding, no scp or sftp):
#   restrict,command="/usr/local/bin/obd2-dashboard-receive" ssh-ed25519 AAAA… github-deploy
#   restrict,command="/usr/local/bin/obd2-dashboard-receive /srv/obd2" ssh-ed25519 AAAA… github-deploy
# The argument is DEPLOY_PATH (default /opt/obd2-dashboard): the server decides it, not the
# client. The client (deploy/ship.sh) asks for one thing, which arrives as SSH_ORIGINAL_COMMAND:
#   deploy obd2-dashboard-<sha>.tar.gz [--dry-run]        (<sha>: 7 to 40 lower-case hex digits)
# and sends the artifact on stdin. Anything else is refused (exit 2) before anything is written.
#
# Then: the artifact is streamed into DEPLOY_PATH/incoming/<name>.partial (at most
# RECEIVE_MAX_BYTES, default 500 MB); it must be a gzip tar whose every entry lies under
# obd2-dashboard-<sha>/ and whose REVISION is <sha>; it is renamed to incoming/<name>, the older
# artifacts there are pruned (RECEIVE_KEEP newest kept, default 3), and the deploy/deploy.sh it
# carries runs with --artifact incoming/<name> --deploy-path DEPLOY_PATH [--dry-run]. Its exit
# code is this script's. The options of this VPS (NO_COMPOSE, SYSTEMCTL, …) are read by
# deploy.sh from DEPLOY_PATH/deploy.env.
#
# An artifact is code that runs as the deploy user: whoever holds the key can deploy any
# artifact, but can run nothing else on the server.
set -euo pipefail

say() { echo "receive: $*" >&2; }
refuse() { echo "receive: refused: $*" >&2; exit 2; }
fail() { echo "receive: FAILED: $*" >&2; exit 1; }

[ $# -le 1 ] || refuse "usage: obd2-dashboard-receive [DEPLOY_PATH] (in authorized_keys' command=)"
deploy_path=${1:-/opt/obd2-dashboard}
[[ "$deploy_path" =~ ^/[A-Za-z0-9._/-]+$ ]] || refuse "DEPLOY_PATH must be an absolute path: $deploy_path"
max_bytes=${RECEIVE_MAX_BYTES:-500000000}
keep=${RECEIVE_KEEP:-3}
[[ "$max_bytes" =~ ^[1-9][0-9]*$ ]] || refuse "RECEIVE_MAX_BYTES must be a number of bytes"
[[ "$keep" =~ ^[1-9][0-9]*$ ]] || refuse "RECEIVE_KEEP must be 1 or more"

request=${SSH_ORIGINAL_COMMAND-}
pattern='^deploy (obd2-dashboard-([0-9a-f]{7,40})\.tar\.gz)( --dry-run)?$'
if ! [[ "$request" =~ $pattern ]]; then
  if [ -z "$request" ]; then
    refuse "this key only deploys: no shell (send: deploy obd2-dashboard-<sha>.tar.gz [--dry-run])"
  fi
  refuse "this key only deploys; the command must be exactly: deploy obd2-dashboard-<sha>.tar.gz [--dry-run]"
fi
name=${BASH_REMATCH[1]}
sha=${BASH_REMATCH[2]}
dry_run=${BASH_REMATCH[3]:+--dry-run}
top="obd2-dashboard-$sha"

incoming="$deploy_path/incoming"
mkdir -p "$incoming"
exec 8>"$incoming/.receive.lock"
flock -n 8 || fail "another artifact is being received into $incoming"

partial="$incoming/$name.partial"
scratch=$(mktemp -d "$incoming/.deploy-script.XXXXXX")
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() { rm -rf "$partial" "$scratch"; }
trap cleanup EXIT

# -- receive, at most max_bytes -----------------------------------------------------------------
say "receiving $name"
head -c "$((max_bytes + 1))" > "$partial"
size=$(stat -c %s "$partial")
[ "$size" -le "$max_bytes" ] || fail "the artifact is larger than $max_bytes bytes (RECEIVE_MAX_BYTES): not deployed"
[ "$size" -gt 0 ] || fail "no artifact arrived on stdin"

# -- check: a gzip tar of obd2-dashboard-<sha>/ only, REVISION = sha -------------------------------
gzip -t "$partial" 2>/dev/null || fail "$name is not a gzip file"
listing=$(tar -tzf "$partial" 2>"$scratch/tar.err") \
  || fail "$name is not a tar archive: $(head -c 300 "$scratch/tar.err")"
[ -n "$listing" ] || fail "$name is not a tar archive (no entries in it)"
while IFS= read -r entry; do
  case "$entry" in
    "$top"|"$top/"|"$top/"*) ;;
    *) fail "$name holds $entry, outside $top/" ;;
  esac
  case "/$entry/" in
    */../*) fail "$name holds a path with '..': $entry" ;;
  esac
done <<< "$listing"
revision=$(tar -xzOf "$partial" "$top/REVISION" 2>/dev/null) || fail "$name has no $top/REVISION"
[ "$revision" = "$sha" ] || fail "REVISION in $name is not $sha"
tar -xzf "$partial" -C "$scratch" "$top/deploy/deploy.sh" 2>/dev/null \
  || fail "$name has no $top/deploy/deploy.sh"

# -- into place, prune, deploy --------------------------------------------------------------------
mv -f "$partial" "$incoming/$name"
mapfile -t stored < <(find "$incoming" -maxdepth 1 -type f -name 'obd2-dashboard-*.tar.gz' \
  -printf '%T@ %f\n' | sort -rn | cut -d' ' -f2-)
kept=0
for old in "${stored[@]}"; do
  if [ "$old" = "$name" ] || [ "$kept" -lt "$((keep - 1))" ]; then
    [ "$old" = "$name" ] || kept=$((kept + 1))
    continue
  fi
  rm -f "${incoming:?}/$old"
done
exec 8>&-

say "running deploy.sh of $top${dry_run:+ (dry run)}"
set +e
bash "$scratch/$top/deploy/deploy.sh" --artifact "$incoming/$name" --deploy-path "$deploy_path" \
  ${dry_run:+"$dry_run"}
status=$?
set -e
exit "$status"
