package fed

// The protocol's Go code in fedpb/ is generated from proto/ and committed.
// Regenerate it with `go generate ./fed/`, which needs protoc (Debian:
// protobuf-compiler) and installs the pinned Go plugins into a temporary
// folder (see generate.sh).
//go:generate bash generate.sh
