#!/usr/bin/env bash
# scripts/test.sh runs rotor's whole test suite on a fresh machine.
#
# It sets up what the tests need: the pinned HashiCorp Vault server, built
# once per machine from the Go module proxy into ~/.cache/rotor (about 10
# minutes the first time, instant afterwards), and PostgreSQL from Debian's
# packages. The Vault and PostgreSQL integration tests start their own
# servers on loopback; everything else (the AWS Secrets Manager and Clerk
# API emulators) runs inside the tests.
#
# The repository holds several Go modules: rotor itself at the root, the
# keyring SDK (keyring/, the standard library only), the examples and the
# deployment checks (each with dependencies rotor's go.mod must not carry),
# and any module added next to them. Every go.mod in the repository is
# found, except the tool pins under internal/tools (build.sh builds those)
# and testdata; each module is checked on its own, as its users build it:
# go.mod and go.sum tidy, go vet, go test. Arguments are passed to every
# go test, e.g. scripts/test.sh -run TestEnv.
#
# The Node section at the end installs the npm workspace from its lockfile
# (npm ci), builds @rotor-dev/keyring and the Next.js example, and runs the
# node --test suites (a few minutes on 2 cores).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The workflow lint test (deploy/) also checks the workflow's run
# scripts with shellcheck; install it from Debian's packages when we can.
if ! command -v shellcheck >/dev/null 2>&1 && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
	(apt-get install -y -qq shellcheck >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq shellcheck >/dev/null 2>&1; }) ||
		echo "warning: could not install shellcheck" >&2
fi

# --- PostgreSQL -------------------------------------------------------------
# The PostgreSQL tests (provider/postgres, the CLI's postgres scenarios, the
# SDK's pgx helper) start their own throw-away cluster with initdb and
# postgres from Debian's package (see internal/pgtest); nothing runs as a
# service. Install the server when it is missing, as root.
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && [[ -z "${PG_BIN:-}" ]]; then
	if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		echo "PostgreSQL server not found: install Debian's postgresql package (as root: apt-get install -y postgresql) or set PG_BIN" >&2
		exit 1
	fi
	echo "installing PostgreSQL from Debian's packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq postgresql >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq postgresql >/dev/null; }
fi
# ------------------------------------------------------------------------------

# --- Chromium -----------------------------------------------------------------
# The status page's browser test (server, TestPageInBrowser) drives Debian's
# chromium headless through chromedp; install it when it is missing, as root.
if ! command -v chromium >/dev/null 2>&1 && [[ -z "${ROTOR_CHROMIUM:-}" ]]; then
	if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		echo "chromium not found: install Debian's chromium package (as root: apt-get install -y chromium) or set ROTOR_CHROMIUM" >&2
		exit 1
	fi
	echo "installing Chromium from Debian's packages"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; }
fi
# ------------------------------------------------------------------------------

VAULT_BIN="${VAULT_BIN:-$(internal/tools/vault/build.sh)}"
export VAULT_BIN
echo "using vault: $VAULT_BIN ($("$VAULT_BIN" version))"

unformatted="$({ git ls-files --cached --others --exclude-standard -- '*.go' 2>/dev/null || find . -name '*.go'; } | xargs -r gofmt -l)"
if [[ -n "$unformatted" ]]; then
	echo "gofmt needed on:" >&2
	echo "$unformatted" >&2
	exit 1
fi

# No workspace: a go.work would check the modules together, not each as it
# is built on its own.
export GOWORK=off
modules=()
while IFS= read -r mod; do
	dir="$(dirname "$mod")"
	case "/$dir/" in
	*/internal/tools/* | */testdata/*) continue ;;
	esac
	modules+=("$dir")
done < <(git ls-files --cached --others --exclude-standard -- ':(glob)go.mod' ':(glob)**/go.mod' 2>/dev/null ||
	find . -name go.mod -not -path '*/node_modules/*' | sed 's|^\./||')
if [[ ${#modules[@]} -eq 0 ]]; then
	echo "no Go modules found" >&2
	exit 1
fi

failed=()
for dir in "${modules[@]}"; do
	echo "== module $dir ($(cd "$dir" && go list -m))"
	if ! (cd "$dir" && go mod tidy -diff && go vet ./... && go test -count=1 -timeout 45m "$@" ./...); then
		failed+=("$dir")
	fi
done

# --- Node / Next.js: sdk/js (@rotor-dev/keyring) and examples/nextjs-app ---
# Dependencies come from the committed lockfile (npm workspace at the
# repository root). The suites run against the Clerk Backend API emulator
# and a real rotor, built here once; the Next.js example is built with
# `next build` (secrets are not needed to build it) and then tested under
# `rotor run --mode signal`.
node_tests() {
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
		echo "node and npm are needed for the Node tests (Node >= 20.9; Debian: apt-get install nodejs npm)" >&2
		return 1
	fi
	export NEXT_TELEMETRY_DISABLED=1 CLERK_TELEMETRY_DISABLED=1
	npm ci --no-audit --no-fund --loglevel=error || return 1
	npm run build --silent -w @rotor-dev/keyring || return 1
	ROTOR_TEST_BIN="$(mktemp -d)"
	export ROTOR_TEST_BIN
	# The suites use rotor's test knobs (ROTOR_CLOCK_SKEW), which exist only
	# with the rotortest build tag.
	go build -tags rotortest -o "$ROTOR_TEST_BIN/rotor" ./cmd/rotor &&
		go build -o "$ROTOR_TEST_BIN/clerk-emulator" ./cmd/clerk-emulator &&
		(cd examples/nextjs-app && SKIP_ENV_VALIDATION=1 npx next build) &&
		node --test --test-concurrency=1 sdk/js/test/*.test.js examples/nextjs-app/test/*.test.js
	local status=$?
	rm -rf "$ROTOR_TEST_BIN"
	return $status
}
echo "== node (sdk/js, examples/nextjs-app)"
if ! node_tests; then
	failed+=("node")
fi

if [[ ${#failed[@]} -gt 0 ]]; then
	echo "FAILED: ${failed[*]}" >&2
	exit 1
fi
