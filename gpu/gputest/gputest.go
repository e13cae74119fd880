//go:build linux && (amd64 || arm64)

// Package gputest gives the tests of packages above gpu (the trainer, the
// simulator, the commands) a CUDA engine where no GPU is present: the
// kernels' CPU emulator (gpu.OpenEmulated). It checks what those packages
// decide on a GPU engine — one upload of a shared base, turns on the one
// stream, freeing what each run took — not the device itself, which only
// gpu/devcheck.sh checks.
package gputest

import (
	"testing"

	"github.com/kronfed/kronfed/gpu"
	"github.com/kronfed/kronfed/gpu/internal/emu"
)

// Engine is an emulated engine with frozen weights in p and a device of
// memory bytes (0: 64 GiB), closed when the test ends. It skips the test
// where clang++ is missing, except under CI=true (emu.Require). Emulation
// is slow: keep models tiny.
func Engine(t testing.TB, p gpu.Precision, memory int64) *gpu.Engine {
	t.Helper()
	e := gpu.OpenEmulated(emu.Require(t), p, memory)
	t.Cleanup(func() { e.Close() })
	return e
}
