#!/usr/bin/env bash
# Builds static release binaries of coordinator, client and simulate for
# the platforms kronfed runs on, stamped with the version (git describe):
#
#     scripts/build-release.sh [VERSION]    # → dist/VERSION/OS-ARCH/{coordinator,client,simulate}
#
# CGO is off everywhere. The coordinator, which never trains, is built with
# -tags nocuda: fully static, it runs on any Linux of the architecture. The
# client and the simulator keep the GPU engine, which opens the CUDA
# libraries at run time (purego): they link only the system's C library
# (libc, libdl, libpthread), no CUDA and no C toolchain at build time.
# Copy the right ones to each machine (docs/deployment.md).
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo devel)}
platforms=${PLATFORMS:-"linux/amd64 linux/arm64 darwin/arm64"}
for p in $platforms; do
  os=${p%/*} arch=${p#*/}
  out=dist/$version/$os-$arch
  mkdir -p "$out"
  for cmd in coordinator client simulate; do
    tags=""
    [ "$cmd" = coordinator ] && tags="-tags nocuda"
    # shellcheck disable=SC2086
    CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath $tags \
      -ldflags "-s -w -X github.com/kronfed/kronfed/internal/cli.Version=$version" \
      -o "$out/$cmd" "./cmd/$cmd"
  done
  echo "$out: coordinator client simulate"
done
