package kernels_test

import (
	"math"
	"testing"
	"unsafe"
)

// device is what the parity tests need from a GPU: memory, copies and a
// kernels.Launcher over every compiled entry. Two implement it: the real
// device through gpu/cuda (cuda_device_test.go) and the CPU emulation of
// the same CUDA sources (emu_test.go).
type device interface {
	Launch(entry string, grid, block [3]uint32, sharedBytes uint32, args ...any) error
	alloc(bytes int) (uintptr, error)
	upload(dst uintptr, src []byte) error
	download(dst []byte, src uintptr) error
	sync() error
	// emulated reports a CPU emulation: the tests pick smaller shapes.
	emulated() bool
}

// bytesOf views a slice of plain numbers as its bytes.
func bytesOf[T float32 | float64 | int32 | uint16 | uint64](s []T) []byte {
	if len(s) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&s[0])), len(s)*int(unsafe.Sizeof(s[0])))
}

// put uploads s to a fresh device buffer (at least 8 bytes, so an empty
// slice still has an address).
func put[T float32 | float64 | int32 | uint16 | uint64](t testing.TB, d device, s []T) uintptr {
	t.Helper()
	var zero T
	n := max(len(s)*int(unsafe.Sizeof(zero)), 8)
	p, err := d.alloc(n)
	if err != nil {
		t.Fatalf("alloc %d bytes: %v", n, err)
	}
	if len(s) > 0 {
		if err := d.upload(p, bytesOf(s)); err != nil {
			t.Fatalf("upload: %v", err)
		}
	}
	return p
}

// get downloads n elements from p (after the launches before it finish).
func get[T float32 | float64 | int32 | uint16 | uint64](t testing.TB, d device, p uintptr, n int) []T {
	t.Helper()
	if err := d.sync(); err != nil {
		t.Fatalf("sync: %v", err)
	}
	out := make([]T, n)
	if n > 0 {
		if err := d.download(bytesOf(out), p); err != nil {
			t.Fatalf("download: %v", err)
		}
	}
	return out
}

// must fails the test on a launch error.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// closeTo compares got with the float64 reference: every element within
// atol + rtol·|want| (NaN only where want is NaN, infinities equal). It
// reports the worst element and how many failed.
func closeTo(t *testing.T, name string, got []float32, want []float64, atol, rtol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", name, len(got), len(want))
	}
	bad, worst, worstErr := 0, -1, 0.0
	for i := range got {
		g, w := float64(got[i]), want[i]
		var e float64
		switch {
		case math.IsNaN(w) || math.IsNaN(g):
			if math.IsNaN(w) != math.IsNaN(g) {
				e = math.Inf(1)
			}
		case math.IsInf(w, 0) || math.IsInf(g, 0):
			if g != w {
				e = math.Inf(1)
			}
		default:
			e = math.Abs(g-w) / (atol + rtol*math.Abs(w))
		}
		if e > 1 {
			bad++
		}
		if worst < 0 || e > worstErr {
			worst, worstErr = i, e
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values off; worst [%d] = %v, want %v (atol %g, rtol %g)",
			name, bad, len(got), worst, got[worst], want[worst], atol, rtol)
	}
}

// f64 widens a float32 slice.
func f64(s []float32) []float64 {
	out := make([]float64, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}
