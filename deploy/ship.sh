#!/usr/bin/env bash
# Copies an artifact and the deploy script to the VPS over SSH and runs the deploy there; the
# deploy workflow's last step, and usable by hand:
#   SSH_HOST=… SSH_USER=… SSH_KEY_FILE=… DEPLOY_PATH=/opt/obd2-dashboard \
#     deploy/ship.sh ARTIFACT.tar.gz [deploy.sh options…]
# Optional: SSH_PORT (22), SSH_KNOWN_HOSTS_FILE (else the host key is learnt on first use).
set -euo pipefail

[ $# -ge 1 ] || { echo "usage: ship.sh ARTIFACT.tar.gz [deploy.sh options…]" >&2; exit 2; }
artifact=$1; shift
for var in SSH_HOST SSH_USER SSH_KEY_FILE DEPLOY_PATH; do
  [ -n "${!var:-}" ] || { echo "ship: $var is not set" >&2; exit 2; }
done
[ -f "$artifact" ] || { echo "ship: no artifact at $artifact" >&2; exit 2; }

port=${SSH_PORT:-22}
known_hosts=${SSH_KNOWN_HOSTS_FILE:-$HOME/.ssh/known_hosts}
opts=(-i "$SSH_KEY_FILE" -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=20
      -o "UserKnownHostsFile=$known_hosts" -o StrictHostKeyChecking=accept-new)
target="$SSH_USER@$SSH_HOST"
incoming="$DEPLOY_PATH/incoming"
here=$(cd "$(dirname "$0")" && pwd)

ssh -p "$port" "${opts[@]}" "$target" "mkdir -p '$incoming'"
scp -q -P "$port" "${opts[@]}" "$artifact" "$here/deploy.sh" "$target:$incoming/"
remote_args=$(printf ' %q' --artifact "$incoming/$(basename "$artifact")" --deploy-path "$DEPLOY_PATH" "$@")
ssh -p "$port" "${opts[@]}" "$target" "bash '$incoming/deploy.sh'$remote_args"
