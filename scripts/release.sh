#!/usr/bin/env bash
# scripts/release.sh builds rotor's release archives: one static binary of
# cmd/rotor per target, stamped with the version, packed with the LICENSE
# and README, and a checksums file.
#
#   scripts/release.sh VERSION OUTDIR [GOOS/GOARCH ...]
#
# The default targets are linux, darwin and windows on amd64 and arm64.
# Archives are rotor_VERSION_GOOS_GOARCH.tar.gz (.zip for windows), and
# OUTDIR/checksums.txt lists their SHA-256 in the format `sha256sum -c`
# reads. The release workflow (.github/workflows/release.yml) runs this
# script; so does deploy's TestReleaseBuild, so what the workflow ships is
# what the tests build.
#
# Builds are reproducible: CGO_ENABLED=0 and -trimpath leave no trace of the
# build machine, and the archives carry fixed owners and the commit's time.
set -euo pipefail

if [[ $# -lt 2 ]]; then
	echo "usage: $0 VERSION OUTDIR [GOOS/GOARCH ...]" >&2
	exit 2
fi
version="$1"
outdir="$2"
shift 2
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
	targets=(linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64)
fi
if [[ ! "$version" =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
	echo "$0: version $version is not a semantic version tag (v1.2.3, v1.2.3-rc.1)" >&2
	exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"
# The archives' file times: the commit's, so two builds of one commit are
# byte for byte the same.
mtime="$(git log -1 --format=%cI 2>/dev/null || date -u +%Y-%m-%dT%H:%M:%SZ)"

export CGO_ENABLED=0 GOWORK=off
for target in "${targets[@]}"; do
	goos="${target%/*}"
	goarch="${target#*/}"
	name="rotor_${version}_${goos}_${goarch}"
	stage="$(mktemp -d)"
	trap 'rm -rf "$stage"' EXIT
	mkdir "$stage/$name"
	exe=rotor
	[[ "$goos" == windows ]] && exe=rotor.exe
	GOOS="$goos" GOARCH="$goarch" go build -trimpath \
		-ldflags "-s -w -X main.version=$version" \
		-o "$stage/$name/$exe" ./cmd/rotor
	cp README.md "$stage/$name/"
	[[ -f LICENSE ]] && cp LICENSE "$stage/$name/"
	touch -d "$mtime" "$stage/$name" "$stage/$name"/*
	if [[ "$goos" == windows ]]; then
		rm -f "$outdir/$name.zip"
		(cd "$stage" && zip -qrX "$outdir/$name.zip" "$name")
	else
		tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner --mtime="$mtime" \
			-cf - "$name" | gzip -n >"$outdir/$name.tar.gz"
	fi
	rm -rf "$stage"
	trap - EXIT
	echo "built $name"
done

shopt -s nullglob
archives=()
for f in "$outdir"/rotor_"${version}"_*.tar.gz "$outdir"/rotor_"${version}"_*.zip; do
	archives+=("${f##*/}")
done
(cd "$outdir" && sha256sum -- "${archives[@]}" >checksums.txt)
echo "wrote $outdir/checksums.txt"
