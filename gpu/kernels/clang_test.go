package kernels

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// clangArgs compiles one kernel file to PTX for sm_80 with clang as a CUDA
// device-only compilation: no CUDA installation (-nocudainc -nocudalib), the
// shim header standing in for NVRTC's built-ins, and PTX ISA 7.2 enabled
// explicitly (clang cannot read it from a CUDA installation it was told to
// ignore; the sync shuffles need it).
func clangArgs(src, out string) []string {
	return []string{"-x", "cuda", "--cuda-gpu-arch=sm_80", "-nocudainc", "-nocudalib", "--cuda-device-only",
		"-S", "-O2", "-std=c++17", "-Xclang", "-target-feature", "-Xclang", "+ptx72",
		"-include", filepath.Join("testdata", "nvrtc_shim.h"), "-o", out, src}
}

// TestKernelsCompileWithClang compiles every .cu file with clang and checks
// that each entry Sources lists is a visible kernel in the PTX: the sources
// are valid CUDA C with nothing but NVRTC's built-ins, and the entry lists
// are right. NVRTC itself compiles them in the device tests.
func TestKernelsCompileWithClang(t *testing.T) {
	clang, err := exec.LookPath("clang++")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("clang++ not found (CI=true: it is required; .ci/run installs it): %v", err)
		}
		t.Skipf("clang++ not found, so the kernels were not compiled (install clang 14 or newer to run this test): %v", err)
	}
	dir := t.TempDir()
	for _, s := range Sources() {
		t.Run(s.Name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(dir, strings.TrimSuffix(s.Name, ".cu")+".ptx")
			cmd := exec.Command(clang, clangArgs(s.Name, out)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("clang++ %s: %v\n%s", strings.Join(clangArgs(s.Name, out), " "), err, stderr.String())
			}
			if stderr.Len() > 0 {
				t.Logf("clang++ warnings for %s:\n%s", s.Name, stderr.String())
			}
			ptx, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range s.Entries {
				if !bytes.Contains(ptx, []byte(".visible .entry "+e+"(")) {
					t.Errorf("%s: entry %s is not in the PTX", s.Name, e)
				}
			}
			if n := bytes.Count(ptx, []byte(".visible .entry ")); n != len(s.Entries) {
				t.Errorf("%s: the PTX has %d entries, Sources lists %d (%v)", s.Name, n, len(s.Entries), s.Entries)
			}
		})
	}
}
