#!/usr/bin/env bash
# Sends an artifact to the VPS and has it deployed there, in one SSH call: the artifact goes on
# stdin, the command asks for nothing but `deploy NAME [--dry-run]`, and the deploy key's forced
# command on the server (obd2-dashboard-receive, deploy/receive.sh) does the rest. The deploy
# workflow's last step, and usable by hand:
#   SSH_HOST=… SSH_USER=deploy SSH_KEY_FILE=… SSH_KNOWN_HOSTS_FILE=… \
#     deploy/ship.sh dist/obd2-dashboard-<sha>.tar.gz [--dry-run]
# SSH_KNOWN_HOSTS_FILE is required and must hold the server's host key: an unknown or changed
# host key is refused, never learnt. Optional: SSH_PORT (else ssh's own: 22, or ~/.ssh/config).
# Where the release goes and the options of this VPS are the server's business (the forced
# command, DEPLOY_PATH/deploy.env).
set -euo pipefail

die() { echo "ship: $*" >&2; exit 2; }

if [ $# -lt 1 ] || [ $# -gt 2 ]; then die "usage: ship.sh ARTIFACT.tar.gz [--dry-run]"; fi
artifact=$1
dry_run=""
if [ $# = 2 ]; then
  [ "$2" = --dry-run ] || die "unknown argument $2 (usage: ship.sh ARTIFACT.tar.gz [--dry-run])"
  dry_run=" --dry-run"
fi
for var in SSH_HOST SSH_USER SSH_KEY_FILE SSH_KNOWN_HOSTS_FILE; do
  [ -n "${!var:-}" ] || die "$var is not set"
done
[ -f "$artifact" ] || die "no artifact at $artifact"
name=$(basename "$artifact")
[[ "$name" =~ ^obd2-dashboard-[0-9a-f]{7,40}\.tar\.gz$ ]] \
  || die "$name is not named obd2-dashboard-<sha>.tar.gz (deploy/build-artifact.sh names it)"
[ -f "$SSH_KEY_FILE" ] || die "no SSH key at SSH_KEY_FILE=$SSH_KEY_FILE"
known_hosts=$SSH_KNOWN_HOSTS_FILE
if [ ! -f "$known_hosts" ] || ! grep -q '^[^#[:space:]]' "$known_hosts"; then
  die "no host key in SSH_KNOWN_HOSTS_FILE=$known_hosts: put the server's host key lines there
ship: (ssh-keyscan -p PORT HOST, compared with ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on
ship: the server); an unknown host key is refused, never learnt"
fi

opts=(-i "$SSH_KEY_FILE" -T
      -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=20 -o ServerAliveInterval=30
      -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$known_hosts"
      -o GlobalKnownHostsFile=/dev/null -o ClearAllForwardings=yes)
# Without SSH_PORT, the port is ssh's own choice: 22, or what ~/.ssh/config says for the host.
port=${SSH_PORT:-}
if [ -n "$port" ]; then opts=(-p "$port" "${opts[@]}"); fi
echo "ship: sending $name to $SSH_USER@$SSH_HOST${dry_run:+ (dry run)}" >&2
status=0
# The request is expanded here on purpose: the forced command reads it as SSH_ORIGINAL_COMMAND.
# shellcheck disable=SC2029
ssh "${opts[@]}" "$SSH_USER@$SSH_HOST" "deploy $name$dry_run" < "$artifact" || status=$?
if [ "$status" = 255 ]; then
  echo "ship: ssh failed (exit 255): an unknown or changed host key, a refused key, or no connection (above)" >&2
fi
exit "$status"
