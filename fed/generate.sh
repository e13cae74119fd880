#!/usr/bin/env bash
# Regenerates fedpb/ from proto/ with pinned plugin versions.
set -euo pipefail
cd "$(dirname "$0")"
command -v protoc >/dev/null || { echo "generate.sh: protoc not found (Debian: apt-get install protobuf-compiler)" >&2; exit 1; }
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
GOBIN=$bin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
GOBIN=$bin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
PATH=$bin:$PATH protoc -I proto \
  --go_out=fedpb --go_opt=paths=source_relative,Mkronfed/fed/v1/fed.proto=github.com/kronfed/kronfed/fed/fedpb \
  --go-grpc_out=fedpb --go-grpc_opt=paths=source_relative,Mkronfed/fed/v1/fed.proto=github.com/kronfed/kronfed/fed/fedpb \
  kronfed/fed/v1/fed.proto
# paths=source_relative mirrors the proto folders; keep the package flat.
mv fedpb/kronfed/fed/v1/*.go fedpb/
rm -rf fedpb/kronfed
