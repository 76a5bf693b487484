#!/bin/sh
# The entrypoint of the stand-ins for the postgres and redis images inside the install test's
# machine (Docker Hub is unreachable there): one Debian 12 root with postgresql and redis-server,
# imported under both names.
# - With a command (compose's redis service: `redis-server --appendonly yes …`), it runs it in
#   /data, the volume, as the official redis image does.
# - Without one, it is PostgreSQL, started the way the official image starts: on an empty volume
#   it makes the cluster with POSTGRES_USER as superuser (password POSTGRES_PASSWORD,
#   scram-sha-256 for every TCP client) and the database POSTGRES_DB; then runs the server.
set -eu
if [ $# -gt 0 ]; then
  mkdir -p /data
  cd /data
  exec "$@"
fi
for PGBIN in /usr/lib/postgresql/*/bin; do :; done  # the newest (the only) version
PGDATA=${PGDATA:-/var/lib/postgresql/data}
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
: "${POSTGRES_PASSWORD:?the stand-in needs POSTGRES_PASSWORD, as the official image does}"
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 0700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  chown postgres "$pwfile"
  su postgres -s /bin/sh -c "$PGBIN/initdb -D '$PGDATA' -U '$POSTGRES_USER' --pwfile='$pwfile' --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8" >/dev/null
  rm -f "$pwfile"
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    su postgres -s /bin/sh -c "$PGBIN/postgres -D '$PGDATA' -c listen_addresses='' & echo \$! > /tmp/pg.pid; sleep 0.5; until $PGBIN/pg_isready -q -h /run/postgresql; do sleep 0.2; done; $PGBIN/createdb -h /run/postgresql -U '$POSTGRES_USER' '$POSTGRES_DB'; kill \$(cat /tmp/pg.pid); while [ -e '$PGDATA/postmaster.pid' ]; do sleep 0.2; done"
  fi
fi
exec su postgres -s /bin/sh -c "exec $PGBIN/postgres -D '$PGDATA' -c listen_addresses='*'"
