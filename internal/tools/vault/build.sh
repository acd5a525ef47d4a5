#!/usr/bin/env bash
# build.sh builds the pinned Vault server once per machine and prints its path.
#
# The binary is cached outside the clone, keyed by version, so CI runs and
# later sessions reuse it: ${ROTOR_CACHE:-$HOME/.cache/rotor}/vault-<version>/vault.
# internal/vaulttest looks for it there (after $VAULT_BIN and $PATH).
# A build takes about 6-10 minutes on 2 cores.
#
# Idempotent: with a working binary in the cache it only prints the path.
# Concurrent runs wait for each other instead of building twice, and a
# failed or interrupted build leaves no half-written binary behind.
#
# Pairing: see tools.go. To move to another Vault release, change the
# require line in go.mod, run `go mod tidy` in this directory, run this
# script, and update vaulttest.Version (a test checks they agree).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '$1=="require" && $2=="github.com/hashicorp/vault" {print $3}' "$here/go.mod")"
if [[ -z "$version" ]]; then
	echo "build.sh: no 'require github.com/hashicorp/vault' line in $here/go.mod" >&2
	exit 1
fi
cache="${ROTOR_CACHE:-$HOME/.cache/rotor}/vault-${version}"
bin="$cache/vault"

usable() { [[ -x "$bin" ]] && "$bin" version >/dev/null 2>&1; }

if usable; then
	echo "$bin"
	exit 0
fi

mkdir -p "$cache"
# One build at a time per cache directory; a waiting run reuses the result.
exec 9>"$cache/.build.lock"
if command -v flock >/dev/null 2>&1; then
	flock 9
	if usable; then
		echo "$bin"
		exit 0
	fi
fi

echo "building vault ${version} into ${cache} (one-off, several minutes)..." >&2
tmp="$bin.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(cd "$here" && go build -trimpath -ldflags "-s -w" -o "$tmp" github.com/hashicorp/vault)
"$tmp" version >/dev/null
mv "$tmp" "$bin"
echo "$bin"
