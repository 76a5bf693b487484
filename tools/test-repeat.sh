#!/usr/bin/env bash
# Runs the whole pytest suite RUNS times (default 3), each in a random order of its own
# (pytest-randomly), and lists at the end every test that failed with the seed of the run it
# failed in. Reproduce one with: .venv/bin/pytest -p randomly --randomly-seed=SEED -n 2 --dist loadgroup
# Logs: var/test-repeat/. Exit 0 only when every run passed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

runs=${1:-3}
case "$runs" in
  '' | *[!0-9]* | 0) echo "test-repeat: RUNS must be a whole number above 0, not '$runs'" >&2; exit 2 ;;
esac
logs=var/test-repeat
mkdir -p "$logs"
summary=()
failed_runs=0
for run in $(seq 1 "$runs"); do
  seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
  log="$logs/run-$run-seed-$seed.log"
  echo "test-repeat: run $run of $runs, --randomly-seed=$seed (log: $log)"
  started=$(date +%s)
  # shellcheck disable=SC2086 # PYTEST_ARGS is a list of words on purpose
  .venv/bin/pytest -n 2 --dist loadgroup -p randomly --randomly-seed="$seed" -p no:cacheprovider \
    ${PYTEST_ARGS:-} >"$log" 2>&1
  status=$?
  took=$(($(date +%s) - started))
  closing=$(grep -E '^=+ .* in [0-9.]+s' "$log" | tail -n 1 | tr -d '=' | sed 's/^ *//; s/ *$//')
  echo "test-repeat: run $run: exit $status in ${took}s: ${closing:-no closing line}"
  if [ "$status" -ne 0 ]; then
    failed_runs=$((failed_runs + 1))
    while IFS= read -r line; do
      summary+=("seed $seed: $line")
    done < <(grep -E '^(FAILED|ERROR) ' "$log" || echo "exit $status without a FAILED line: see $log")
  fi
done
echo
if [ "$failed_runs" -eq 0 ]; then
  echo "test-repeat: all $runs runs passed"
  exit 0
fi
echo "test-repeat: $failed_runs of $runs runs failed:"
printf '  %s\n' "${summary[@]}"
exit 1
