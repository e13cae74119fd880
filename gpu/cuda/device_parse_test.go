package cuda

import (
	"strings"
	"testing"
)

func TestParseDevice(t *testing.T) {
	good := map[string]int{"cuda": 0, "gpu": 0, "cuda:0": 0, "cuda:1": 1, "gpu:3": 3, "CUDA:2": 2, " gpu:12 ": 12}
	for s, want := range good {
		got, err := ParseDevice(s)
		if err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "cpu", "cuda:", "cuda:-1", "cuda:+1", "cuda:x", "cuda:1:2", "gpu0", "cuda 1", "mps", "cuda:1.5"} {
		if n, err := ParseDevice(s); err == nil {
			t.Errorf("ParseDevice(%q) = %d, want an error", s, n)
		} else if !strings.Contains(err.Error(), "cuda:N") && !strings.Contains(err.Error(), "ordinal") {
			t.Errorf("ParseDevice(%q): unhelpful error %v", s, err)
		}
	}
}

func TestDeviceString(t *testing.T) {
	d := Device{Ordinal: 0, Name: "NVIDIA H100 80GB HBM3", Major: 9, Minor: 0, TotalMem: 84_929_347_584, SMs: 132}
	if got, want := d.String(), "device 0 (NVIDIA H100 80GB HBM3, sm_90, 79.1 GiB)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 512: "512 B", 1536: "1.5 KiB", 3 << 20: "3.0 MiB", 2 << 30: "2.0 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Op: "cuMemAlloc(2.0 GiB) on device 0 (NVIDIA H100)", Code: 2, Name: "CUDA_ERROR_OUT_OF_MEMORY", Desc: "out of memory", API: "CUDA"}
	if got, want := e.Error(), "gpu: cuMemAlloc(2.0 GiB) on device 0 (NVIDIA H100): CUDA_ERROR_OUT_OF_MEMORY: out of memory"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	e.Detail = "free 1.0 GiB of 79.1 GiB"
	if !strings.HasSuffix(e.Error(), "out of memory (free 1.0 GiB of 79.1 GiB)") {
		t.Errorf("detail missing: %q", e.Error())
	}
	if !IsOutOfMemory(e) || IsOutOfMemory(&Error{Code: 2, API: "NVRTC"}) || !IsOutOfMemory(&Error{Code: 3, API: "cuBLAS"}) {
		t.Error("IsOutOfMemory misclassifies")
	}
}
