#!/usr/bin/env bash
# scripts/stress-tests.sh runs rotor's whole test suite on a busy machine, to
# show that no test depends on timing or luck. It is scripts/test.sh (every
# module: gofmt, tidy, vet, tests) with every test run three times with
# GOMAXPROCS=1 and three times with GOMAXPROCS=2 (go test -count=3 -cpu 1,2)
# while CPU hogs (busy shell loops, one per core by default) take the
# processor away at random moments. The hogs are started by this script and
# always stopped, whatever ends it (success, failure, Ctrl-C).
#
# Usage: scripts/stress-tests.sh [go test flags]
#   Flags go to every go test after the stress flags, e.g.
#   scripts/stress-tests.sh -run TestFailures
#   STRESS_HOGS=N   number of busy loops (default: the number of cores)
#   VAULT_BIN       a Vault server binary (default: the pinned build, as in test.sh)
#
# How long it takes here: about 70 minutes on this 2-core machine while four
# other engineers built and tested on it (load average 25-40 with the
# hogs): cmd/rotor 38 min, internal/zerodowntime 30 min, audit 12 min,
# store/vault 6.5 min, the rest a few minutes together; every test passed
# all six times. The last line of a run prints its time.
set -euo pipefail

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

# The whole script is one function, read before it runs: a checkout or edit
# of this file during an hour-long run cannot change what the shell executes.
main() {
	cd "$(dirname "${BASH_SOURCE[0]}")/.."

	# Build Vault (once per machine) before the hogs start competing with it.
	VAULT_BIN="${VAULT_BIN:-$(internal/tools/vault/build.sh)}"
	export VAULT_BIN

	n="${STRESS_HOGS:-$(nproc)}"
	for ((i = 0; i < n; i++)); do
		sh -c 'while :; do :; done' &
		hogs+=("$!")
	done
	echo "stress: $n CPU hogs running (pids ${hogs[*]})"

	start=$SECONDS
	status=0
	# test.sh runs go test -count=1 -timeout 45m "$@": the later flags win.
	scripts/test.sh -count=3 -cpu 1,2 -timeout 120m "$@" || status=$?
	stop_hogs
	echo "stress: exited $status after $(((SECONDS - start) / 60))m$(((SECONDS - start) % 60))s"
	exit "$status"
}
main "$@"
