#!/bin/sh
# The operator CLI as the services run it: as the service user, with the service's settings, from
# the live release. Installed by the guide as /usr/local/bin/obd2-dashboard (run it as root):
#   obd2-dashboard check-env | backup | restore-drill | create-user … | dead-letters | …
set -eu
release=${OBD2_DASHBOARD_CURRENT:-/opt/obd2-dashboard/current}
env_file=${OBD2_DASHBOARD_ENV_FILE:-/etc/obd2-dashboard.env}
if [ ! -x "$release/.venv/bin/obd2-dashboard" ]; then
  echo "obd2-dashboard: no release at $release yet (deploy one first: doc/ops-deploy.md section 7)" >&2
  exit 1
fi
cd "$release"
if [ "$(id -u)" = 0 ]; then
  exec runuser -u obd2-dashboard -- "$release/.venv/bin/obd2-dashboard" --env-file "$env_file" "$@"
fi
exec "$release/.venv/bin/obd2-dashboard" --env-file "$env_file" "$@"
