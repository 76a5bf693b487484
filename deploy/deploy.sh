#!/usr/bin/env bash
# Deploys one artifact on the VPS, health-gated, with automatic rollback. Run by
# obd2-dashboard-receive (deploy/receive.sh, the deploy key's forced command) with the copy of
# this script inside the artifact it received, or by hand:
#   deploy.sh --artifact obd2-dashboard-<sha>.tar.gz [--dry-run] [options]
#
# Layout under DEPLOY_PATH (default /opt/obd2-dashboard):
#   releases/<UTC time>-<sha12>/   one unpacked artifact with its own .venv; `var` -> shared/var
#   current -> releases/…          what the units run (switched atomically: ln -s tmp && mv -T)
#   shared/                        state that outlives releases
#   revisions.log                  one line per deploy and rollback
#   .deploy.lock                   one deploy at a time
# Settings stay in ENV_FILE (/etc/obd2-dashboard.env) and BACKUP_DIR, outside the releases.
#
# Steps: lock; unpack and install; data services up and healthy (docker compose, unless
# --no-compose); check-env (any warning stops the deploy); when a migration is pending, `backup --pre-migration` then
# `migrate`; `redis-bootstrap`; switch `current`; restart the units; poll /readyz until it
# answers 200 for this release. On failure, `current` goes back to the previous release, the
# units restart, and this prints how to restore the pre-migration backup. Never resets or drops
# data.
#
# Options (environment variable in brackets):
#   --artifact FILE                     the .tar.gz built by deploy/build-artifact.sh
#   --deploy-path DIR     [DEPLOY_PATH] default /opt/obd2-dashboard
#   --env-file FILE       [ENV_FILE]    default /etc/obd2-dashboard.env
#   --keep N              [KEEP_RELEASES] releases kept, default 5 (current is never pruned)
#   --no-compose                        Postgres and Redis are system services: skip compose
#   --compose-env-file F  [COMPOSE_ENV_FILE] default /etc/obd2-dashboard-compose.env
#   --allow-missing-redis-bootstrap     a build without `redis-bootstrap` is not an error
#   --units "A B"         [UNITS]       default "obd2-dashboard-api.service obd2-dashboard-worker.service"
#   --systemctl CMD       [SYSTEMCTL]   default systemctl (e.g. "sudo systemctl")
#   --readyz-url URL      [READYZ_URL]  default http://127.0.0.1:8000/readyz
#   --readyz-timeout S    [READYZ_TIMEOUT] default 60
#   --python PY           [PYTHON]      interpreter of the release venv, default python3
#   --uv PATH             [UV]          default: uv on PATH, else /usr/local/bin/uv
#   --offline                           install from uv's cache only
#   --dry-run                           print what would be done, change nothing
# The bracketed variables, and NO_COMPOSE=1, OFFLINE=1 and ALLOW_MISSING_REDIS_BOOTSTRAP=1, may also be set
# in DEPLOY_PATH/deploy.env (KEY=value lines): the options of this VPS, kept on it. The command
# line wins over that file, and the file over the environment.
set -euo pipefail

# Reads KEY=value lines the way systemd's EnvironmentFile= does: never evaluated by the shell.
load_env_file() {
  local line key
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line#"${line%%[![:space:]]*}"}"
    case "$line" in ''|'#'*|';'*) continue ;; esac
    key="${line%%=*}"
    [[ "$key" =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
    export "$key=${line#*=}"
  done < "$1"
}

for ((i = 1; i < $#; i++)); do
  if [ "${!i}" = --deploy-path ]; then j=$((i + 1)); DEPLOY_PATH="${!j}"; fi
done
if [ -f "${DEPLOY_PATH:-/opt/obd2-dashboard}/deploy.env" ]; then
  load_env_file "${DEPLOY_PATH:-/opt/obd2-dashboard}/deploy.env"
fi

DEPLOY_PATH=${DEPLOY_PATH:-/opt/obd2-dashboard}
ENV_FILE=${ENV_FILE:-/etc/obd2-dashboard.env}
KEEP_RELEASES=${KEEP_RELEASES:-5}
COMPOSE_ENV_FILE=${COMPOSE_ENV_FILE:-/etc/obd2-dashboard-compose.env}
UNITS=${UNITS:-"obd2-dashboard-api.service obd2-dashboard-worker.service"}
SYSTEMCTL=${SYSTEMCTL:-systemctl}
READYZ_URL=${READYZ_URL:-http://127.0.0.1:8000/readyz}
READYZ_TIMEOUT=${READYZ_TIMEOUT:-60}
PYTHON=${PYTHON:-python3}
UV=${UV:-}
artifact="" dry_run=0 offline=${OFFLINE:-0}
compose=$([ "${NO_COMPOSE:-0}" = 1 ] && echo 0 || echo 1)
allow_missing_bootstrap=${ALLOW_MISSING_REDIS_BOOTSTRAP:-0}

say() { echo "deploy: $*" >&2; }
die() { echo "deploy: FAILED: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --artifact) artifact="$2"; shift 2 ;;
    --deploy-path) DEPLOY_PATH="$2"; shift 2 ;;
    --env-file) ENV_FILE="$2"; shift 2 ;;
    --keep) KEEP_RELEASES="$2"; shift 2 ;;
    --no-compose) compose=0; shift ;;
    --compose-env-file) COMPOSE_ENV_FILE="$2"; shift 2 ;;
    --allow-missing-redis-bootstrap) allow_missing_bootstrap=1; shift ;;
    --units) UNITS="$2"; shift 2 ;;
    --systemctl) SYSTEMCTL="$2"; shift 2 ;;
    --readyz-url) READYZ_URL="$2"; shift 2 ;;
    --readyz-timeout) READYZ_TIMEOUT="$2"; shift 2 ;;
    --python) PYTHON="$2"; shift 2 ;;
    --uv) UV="$2"; shift 2 ;;
    --offline) offline=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,/^set -e/{/^#/p}' "$0"; exit 0 ;;
    *) echo "deploy: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

[ -n "$artifact" ] || { echo "deploy: --artifact FILE is required" >&2; exit 2; }
[ -f "$artifact" ] || { echo "deploy: no artifact at $artifact" >&2; exit 2; }
if ! [[ "$KEEP_RELEASES" =~ ^[0-9]+$ ]] || [ "$KEEP_RELEASES" -lt 2 ]; then
  echo "deploy: --keep must be 2 or more (the previous release is the rollback)" >&2
  exit 2
fi
[[ "$READYZ_TIMEOUT" =~ ^[0-9]+$ ]] || { echo "deploy: --readyz-timeout must be seconds" >&2; exit 2; }
base=$(basename "$artifact" .tar.gz)
sha=${base#obd2-dashboard-}
[[ "$sha" =~ ^[0-9a-f]{7,40}$ ]] || { echo "deploy: $artifact is not named obd2-dashboard-<sha>.tar.gz" >&2; exit 2; }
# uv installs the release: it must be runnable by the user deploying (the deploy user), so not one
# under root's or another user's home.
UV_VERSION=0.13.10
if [ -z "$UV" ]; then
  UV=$(command -v uv || true)
  [ -n "$UV" ] || [ ! -x /usr/local/bin/uv ] || UV=/usr/local/bin/uv
  if [ -z "$UV" ]; then
    die "no uv on PATH nor at /usr/local/bin/uv. Install it for every user (as root):
deploy:   python3 -m venv /opt/uv && /opt/uv/bin/pip install uv==$UV_VERSION && ln -s /opt/uv/bin/uv /usr/local/bin/uv
deploy: or name one with --uv PATH (UV=PATH in $DEPLOY_PATH/deploy.env)"
  fi
fi
[ -x "$UV" ] || die "uv at $UV is not executable by $(id -un)"

release_name="$(date -u +%Y%m%dT%H%M%SZ)-${sha:0:12}"
releases="$DEPLOY_PATH/releases"
release="$releases/$release_name"
current="$DEPLOY_PATH/current"
compose_file="$release/infra/docker-compose.ops.yml"
read -r -a units <<< "$UNITS"
read -r -a systemctl_cmd <<< "$SYSTEMCTL"

if [ "$dry_run" = 1 ]; then
  previous=$(readlink "$current" 2>/dev/null || echo "none")
  cat <<EOF
deploy (dry run): nothing is changed. Would:
  take the lock $DEPLOY_PATH/.deploy.lock
  unpack $artifact into $release and install it into $release/.venv ($UV, $PYTHON)
  link $release/var -> $DEPLOY_PATH/shared/var
  $( [ "$compose" = 1 ] && echo "docker compose -f $compose_file -p obd2-dashboard --env-file $COMPOSE_ENV_FILE up -d --wait" || echo "skip docker compose (--no-compose)")
  load $ENV_FILE and run: obd2-dashboard check-env --file $ENV_FILE (any warning stops here)
  obd2-dashboard migrate --check; if pending: obd2-dashboard backup --pre-migration, then obd2-dashboard migrate
  obd2-dashboard redis-bootstrap$( [ "$allow_missing_bootstrap" = 1 ] && echo " (skipped if this build lacks it)")
  switch $current from $previous to releases/$release_name (ln -s + mv -T)
  ${SYSTEMCTL} restart ${UNITS}
  poll $READYZ_URL for up to ${READYZ_TIMEOUT}s, expecting git_sha $sha
  on failure: switch back to $previous, restart, print how to restore the pre-migration backup
  append to $DEPLOY_PATH/revisions.log; keep the $KEEP_RELEASES newest releases (never current)
EOF
  exit 0
fi

mkdir -p "$releases" "$DEPLOY_PATH/shared/var"
exec 9>"$DEPLOY_PATH/.deploy.lock"
flock -n 9 || die "another deploy holds $DEPLOY_PATH/.deploy.lock"

log_revision() {
  printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >> "$DEPLOY_PATH/revisions.log"
}

# -- unpack and install -------------------------------------------------------------------------
[ ! -e "$release" ] || die "$release exists already"
switched=0
# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup_unswitched() {
  # A release that never became current is removed; one that did is kept for inspection.
  if [ "$switched" = 0 ] && [ -n "${release:-}" ] && [ -d "$release" ]; then rm -rf "$release"; fi
}
trap cleanup_unswitched EXIT

say "unpacking $(basename "$artifact") into $release"
mkdir -p "$release"
tar -xzf "$artifact" -C "$release" --strip-components=1
[ "$(cat "$release/REVISION")" = "$sha" ] || die "REVISION in the artifact is not $sha"
ln -sfn ../../shared/var "$release/var"
uv_flags=(--quiet)
[ "$offline" = 1 ] && uv_flags+=(--offline)
"$UV" venv "${uv_flags[@]}" --python "$PYTHON" "$release/.venv" >/dev/null \
  || die "cannot make a virtualenv with $PYTHON (uv's reason is above)"
"$UV" pip install "${uv_flags[@]}" --python "$release/.venv/bin/python" -r "$release/pylock.toml" \
  || die "installing the locked packages failed"
"$UV" pip install "${uv_flags[@]}" --python "$release/.venv/bin/python" --no-deps "$release"/wheels/*.whl \
  || die "installing the wheels failed"
cli="$release/.venv/bin/obd2-dashboard"
[ -x "$cli" ] || die "the release has no $cli"

# -- settings and data services -------------------------------------------------------------------
[ -r "$ENV_FILE" ] || die "cannot read $ENV_FILE (run as root or as a member of its group)"
load_env_file "$ENV_FILE"

if [ "$compose" = 1 ]; then
  say "data services: docker compose up --wait"
  docker compose -f "$compose_file" -p obd2-dashboard --env-file "$COMPOSE_ENV_FILE" up -d --wait \
    || die "the compose stack did not come up healthy"
fi

# Any warning stops here, before a migration or a switch: a weak or example secret, a loose mode,
# a missing production variable. Nothing has changed yet but the unpacked release (removed).
"$cli" check-env --file "$ENV_FILE" \
  || die "check-env found problems in $ENV_FILE (above); fix them and deploy again. Nothing was migrated and $current is unchanged"

# -- database and Redis ------------------------------------------------------------------------
backup_file="" migrated="none"
check_out=$(LOG_LEVEL=WARNING "$cli" migrate --check 2>&1) && check_rc=0 || check_rc=$?
if [ "$check_rc" = 0 ]; then
  say "no migration pending ($check_out)"
elif [ "$check_rc" = 1 ]; then
  if [[ "$check_out" == *"database at nothing"* ]]; then
    say "fresh database: nothing to back up before the first migration"
  else
    say "migration pending ($check_out): taking a pre-migration backup"
    backup_file=$(LOG_LEVEL=WARNING "$cli" backup --pre-migration) || die "the pre-migration backup failed: nothing was migrated, $current is unchanged"
  fi
  if ! LOG_LEVEL=WARNING "$cli" migrate; then
    echo "deploy: FAILED: the migration failed; $current is unchanged." >&2
    if [ -n "$backup_file" ]; then
      echo "deploy: if the database was left half-migrated, restore the pre-migration backup:" >&2
      echo "deploy:   $current/.venv/bin/obd2-dashboard restore '$backup_file' --target-url \"\$DATABASE_URL\" --yes" >&2
    fi
    log_revision "failed $release_name sha=$sha migration-failed backup=${backup_file:-none}"
    exit 1
  fi
  migrated="$check_out"
else
  die "migrate --check failed: $check_out"
fi

if "$cli" --help 2>/dev/null | grep -qw redis-bootstrap; then
  "$cli" redis-bootstrap || die "redis-bootstrap failed; $current is unchanged"
elif [ "$allow_missing_bootstrap" = 1 ]; then
  say "this build has no redis-bootstrap command: skipped (--allow-missing-redis-bootstrap)"
else
  die "this build has no redis-bootstrap command (pass --allow-missing-redis-bootstrap to go on)"
fi

# -- switch, restart, health gate ----------------------------------------------------------------
previous=$(readlink "$current" 2>/dev/null || true)
switch_to() {
  ln -sfn "$1" "$DEPLOY_PATH/current.tmp"
  mv -T "$DEPLOY_PATH/current.tmp" "$current"
}

restarts() {  # restarts UNIT: how often systemd has restarted it after a failure (empty: unknown)
  systemctl show --property NRestarts --value "$1" 2>/dev/null || true
}

wait_ready() {  # wait_ready EXPECTED_SHA: 0 once /readyz is 200 from that release
  local deadline=$((SECONDS + READYZ_TIMEOUT)) body unit=${units[0]} before now
  # A release whose API dies at start is not waited for until the deadline: once systemd has
  # restarted the unit three times since the deploy's own restart, it is given up on.
  before=$(restarts "$unit")
  while [ "$SECONDS" -lt "$deadline" ]; do
    if body=$(curl -fsS --max-time 5 "$READYZ_URL" 2>/dev/null) \
       && [[ "$body" == *"\"git_sha\":\"$1\""* ]]; then
      return 0
    fi
    now=$(restarts "$unit")
    if [[ "$before" =~ ^[0-9]+$ && "$now" =~ ^[0-9]+$ ]] && [ $((now - before)) -ge 3 ]; then
      say "$unit failed and was restarted $((now - before)) times: not waiting any longer"
      return 1
    fi
    sleep 2
  done
  return 1
}

# The lock's descriptor is closed for it: a process started from here must not hold the lock.
restart_units() { "${systemctl_cmd[@]}" restart "${units[@]}" 9>&-; }

switch_to "releases/$release_name"
switched=1
say "current -> releases/$release_name; restarting ${units[*]}"
if restart_units && wait_ready "$sha"; then
  log_revision "deployed $release_name sha=$sha previous=${previous:-none} migration=${migrated// /_} backup=${backup_file:-none}"
  say "release $release_name is ready"
  # Keep the newest releases; never the one current points at.
  live=$(basename "$(readlink "$current")")
  mapfile -t all < <(find "$releases" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | sort -r)
  kept=0
  for name in "${all[@]}"; do
    if [ "$name" = "$live" ] || [ "$kept" -lt "$KEEP_RELEASES" ]; then
      kept=$((kept + 1))
      continue
    fi
    say "pruning release $name"
    rm -rf "${releases:?}/$name"
  done
  exit 0
fi

echo "deploy: FAILED: $READYZ_URL did not report release $sha ready within ${READYZ_TIMEOUT}s" >&2
if [ -z "$previous" ]; then
  log_revision "failed $release_name sha=$sha no-previous-release backup=${backup_file:-none}"
  die "there is no previous release to roll back to"
fi
say "rolling back: current -> $previous"
switch_to "$previous"
previous_sha=$(cat "$DEPLOY_PATH/$previous/REVISION" 2>/dev/null || echo unknown)
if restart_units && wait_ready "$previous_sha"; then
  say "rolled back: $previous is serving again"
else
  say "the previous release $previous is not ready either: look at journalctl -u obd2-dashboard-api"
fi
log_revision "rolled-back $release_name sha=$sha to=$previous backup=${backup_file:-none}"
if [ -n "$backup_file" ]; then
  cat >&2 <<EOF
deploy: this deploy migrated the database ($migrated) before it failed, so the previous
deploy: release may not run on it. To put the database back as it was before the migration:
deploy:   $DEPLOY_PATH/current/.venv/bin/obd2-dashboard restore '$backup_file' --target-url "\$DATABASE_URL" --yes
deploy: (restore loads it into a scratch database, then swaps it in; the migrated database is
deploy: kept under a _before_restore_ name). Then: ${SYSTEMCTL} restart ${UNITS}
EOF
else
  echo "deploy: no migration ran in this deploy: the database needs no restore." >&2
fi
exit 1
