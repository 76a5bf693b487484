#!/usr/bin/env bash
# Starts the machine's PostgreSQL, Redis and Mosquitto when they are not answering (tests need
# all three).
set -euo pipefail

if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  echo "services: starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf "%f\n" | sort -V | tail -n1)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "services: starting Redis" >&2
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
mqtt_up() { (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; }
if ! mqtt_up; then
  echo "services: starting Mosquitto" >&2
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
  for _ in $(seq 1 30); do mqtt_up && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432 -q || { echo "services: PostgreSQL is not answering on 127.0.0.1:5432" >&2; exit 1; }
redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null || { echo "services: Redis is not answering on 127.0.0.1:6379" >&2; exit 1; }
mqtt_up || { echo "services: Mosquitto is not answering on 127.0.0.1:1883" >&2; exit 1; }
