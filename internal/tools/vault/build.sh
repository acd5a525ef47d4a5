#!/usr/bin/env bash
# build.sh builds the pinned Vault server once per machine and prints its path.
#
# The binary is cached outside the clone, keyed by version, so CI runs and
# later sessions reuse it: ${ROTOR_CACHE:-$HOME/.cache/rotor}/vault-<version>/vault.
# A build takes about 6-7 minutes on 2 cores.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(awk '$1=="require" && $2=="github.com/hashicorp/vault" {print $3}' "$here/go.mod")"
cache="${ROTOR_CACHE:-$HOME/.cache/rotor}/vault-${version}"
bin="$cache/vault"

if [[ -x "$bin" ]] && "$bin" version >/dev/null 2>&1; then
	echo "$bin"
	exit 0
fi

mkdir -p "$cache"
echo "building vault ${version} into ${cache} (one-off, several minutes)..." >&2
tmp="$bin.tmp.$$"
(cd "$here" && go build -trimpath -ldflags "-s -w" -o "$tmp" github.com/hashicorp/vault)
mv "$tmp" "$bin"
echo "$bin"
