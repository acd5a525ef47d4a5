#!/usr/bin/env bash
# scripts/test.sh runs rotor's whole test suite on a fresh machine.
#
# It sets up what the tests need: the pinned HashiCorp Vault server, built
# once per machine from the Go module proxy into ~/.cache/rotor (about 10
# minutes the first time, instant afterwards). The Vault integration tests
# start their own dev servers on loopback from that binary; everything else
# (the AWS Secrets Manager and Clerk API emulators) runs inside the tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck lets the workflow lint test (deploy/) check the workflow's run
# scripts too; install it from Debian's packages when we can.
if ! command -v shellcheck >/dev/null 2>&1 && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
	(apt-get install -y -qq shellcheck >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq shellcheck >/dev/null 2>&1; }) ||
		echo "warning: could not install shellcheck" >&2
fi

VAULT_BIN="${VAULT_BIN:-$(internal/tools/vault/build.sh)}"
export VAULT_BIN
echo "using vault: $VAULT_BIN ($("$VAULT_BIN" version))"

unformatted="$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"
if [[ -n "$unformatted" ]]; then
	echo "gofmt needed on:" >&2
	echo "$unformatted" >&2
	exit 1
fi
go vet ./...
go test -count=1 -timeout 45m "$@" ./...
