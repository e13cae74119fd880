//go:build linux && (amd64 || arm64)

package kernels_test

import (
	"testing"

	"github.com/kronfed/kronfed/gpu/internal/emu"
)

// emuDevice adapts the CPU emulator of the kernels (gpu/internal/emu) to the
// parity tests' device.
type emuDevice struct{ *emu.Device }

func (d emuDevice) emulated() bool                         { return true }
func (d emuDevice) sync() error                            { return nil }
func (d emuDevice) alloc(n int) (uintptr, error)           { return d.Alloc(n) }
func (d emuDevice) upload(dst uintptr, src []byte) error   { return d.Upload(dst, src) }
func (d emuDevice) download(dst []byte, src uintptr) error { return d.Download(dst, src) }

// openEmu returns the emulated device (emu.Require).
func openEmu(t *testing.T) emuDevice { return emuDevice{emu.Require(t)} }

// TestEmulatedParity runs every parity test on the CPU emulation of the
// kernels.
func TestEmulatedParity(t *testing.T) {
	d := openEmu(t)
	defer d.FreeAll()
	runParity(t, d)
}
