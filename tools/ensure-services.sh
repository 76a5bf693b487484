#!/usr/bin/env bash
# Starts PostgreSQL, Redis and Mosquitto on 127.0.0.1 when they are not answering (the tests
# need all three: PostgreSQL on 5432 as user postgres without a password, Redis on 6379,
# Mosquitto on 1883). A server already answering is left alone: on a GitHub runner PostgreSQL
# is the workflow's service container, Redis and Mosquitto are the Debian packages
# tools/bootstrap.sh --test installs, started here (as any user: no system files are written).
set -euo pipefail

pg_up() { pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; }
# Without redis-cli: a PING on the socket, answered +PONG.
redis_up() {
  local reply
  reply=$(exec 3<>/dev/tcp/127.0.0.1/6379 && printf 'PING\r\n' >&3 && timeout 2 head -c 5 <&3) 2>/dev/null
  [ "$reply" = "+PONG" ]
}
mqtt_up() { (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; }
wait_for() { for _ in $(seq 1 30); do "$1" && return 0; sleep 1; done; return 1; }

if ! pg_up; then
  echo "services: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf "%f\n" | sort -V | tail -n1)" main start
  wait_for pg_up || true
fi
if ! redis_up; then
  echo "services: starting Redis" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir "${TMPDIR:-/tmp}" --pidfile "${TMPDIR:-/tmp}/obd2-redis-6379.pid"
  wait_for redis_up || true
fi
if ! mqtt_up; then
  echo "services: starting Mosquitto" >&2
  # A configuration of its own: the package's writes a pid file and a log under /run and
  # /var/log, which only root may.
  conf=$(mktemp "${TMPDIR:-/tmp}/obd2-mosquitto.XXXXXX.conf")
  printf 'listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\n' > "$conf"
  chmod 644 "$conf"
  "$(command -v mosquitto || echo /usr/sbin/mosquitto)" -d -c "$conf"
  wait_for mqtt_up || true
fi
pg_up || { echo "services: PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1; }
redis_up || { echo "services: Redis is not answering on 127.0.0.1:6379" >&2; exit 1; }
mqtt_up || { echo "services: Mosquitto is not answering on 127.0.0.1:1883" >&2; exit 1; }
