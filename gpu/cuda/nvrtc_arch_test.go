package cuda

import (
	"strings"
	"testing"
)

func TestChooseArch(t *testing.T) {
	cuda13 := []int{75, 80, 86, 87, 88, 89, 90, 100, 103, 110, 120, 121}
	cuda12 := []int{50, 52, 53, 60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90}
	for _, c := range []struct {
		supported    []int
		major, minor int
		arch         string
		cubin        bool
	}{
		{cuda13, 9, 0, "sm_90", true},       // H100
		{cuda13, 8, 9, "sm_89", true},       // L4
		{cuda13, 12, 1, "sm_121", true},     //
		{cuda13, 8, 5, "compute_80", false}, // unlisted: PTX for the best older arch
		{cuda13, 13, 0, "compute_121", false},
		{cuda12, 10, 0, "compute_90", false}, // Blackwell with an older NVRTC
		{cuda12, 7, 0, "sm_70", true},
	} {
		arch, cubin, err := chooseArch(c.supported, c.major, c.minor)
		if err != nil || arch != c.arch || cubin != c.cubin {
			t.Errorf("chooseArch(%d.%d) = %q %v %v, want %q %v", c.major, c.minor, arch, cubin, err, c.arch, c.cubin)
		}
	}
	if _, _, err := chooseArch(cuda13, 7, 0); err == nil || !strings.Contains(err.Error(), "sm_75") {
		t.Errorf("Volta with NVRTC 13: got %v, want an error listing what it supports", err)
	}
	for _, cc := range [][2]int{{0, 0}, {-1, 0}, {9, 10}} {
		if _, _, err := chooseArch(cuda13, cc[0], cc[1]); err == nil {
			t.Errorf("compute capability %v accepted", cc)
		}
	}
}

func TestCompileErrorText(t *testing.T) {
	e := &CompileError{Name: "attention.cu", Arch: "sm_90", Major: 13, Minor: 0, Log: "attention.cu(3): error: expected a \";\"\n"}
	want := `gpu: compile attention.cu for sm_90 (NVRTC 13.0): attention.cu(3): error: expected a ";"`
	if e.Error() != want {
		t.Errorf("got %q, want %q", e.Error(), want)
	}
}
