#!/usr/bin/env bash
# scripts/stress-tests.sh runs rotor's whole test suite on a busy machine, to
# show that no test depends on timing or luck: every test runs three times
# with GOMAXPROCS=1 and three times with GOMAXPROCS=2 (go test -count=3
# -cpu 1,2) while CPU hogs (busy shell loops, one per core by default) take
# the processor away at random moments. The hogs are started by this script
# and always stopped, whatever ends it (success, failure, Ctrl-C).
#
# Usage: scripts/stress-tests.sh [go test flags and packages]
#   With no arguments it runs ./...; arguments replace that, e.g.
#   scripts/stress-tests.sh -run TestFailures ./provider/exec
#   STRESS_HOGS=N   number of busy loops (default: the number of cores)
#   VAULT_BIN       a Vault server binary (default: the pinned build, as in test.sh)
#
# How long it takes here: on this 2-core machine, shared with four other
# engineers' builds and tests (load average 25-30 with the hogs), audit
# alone took 12 minutes and the whole run well over an hour; the last line
# of a run prints its time. Expect several times the plain suite's time.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VAULT_BIN="${VAULT_BIN:-$(internal/tools/vault/build.sh)}"
export VAULT_BIN

hogs=()
stop_hogs() {
	if ((${#hogs[@]})); then
		kill "${hogs[@]}" 2>/dev/null || true
		wait "${hogs[@]}" 2>/dev/null || true
	fi
	hogs=()
}
trap stop_hogs EXIT
trap 'exit 130' INT TERM

n="${STRESS_HOGS:-$(nproc)}"
for ((i = 0; i < n; i++)); do
	sh -c 'while :; do :; done' &
	hogs+=("$!")
done
echo "stress: $n CPU hogs running (pids ${hogs[*]})"

start=$SECONDS
status=0
go test -count=3 -cpu 1,2 -timeout 120m "${@:-./...}" || status=$?
echo "stress: go test exited $status after $(((SECONDS - start) / 60))m$(((SECONDS - start) % 60))s"
exit "$status"
