//go:build !windows

package cuda

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ebitengine/purego"
)

func TestFindLibraryNotALibrary(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "libcublas.so.13")
	if err := os.WriteFile(bad, []byte("this is not a shared library\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, direct := purego.Dlopen(bad, purego.RTLD_NOW)
	if direct == nil {
		t.Fatal("the dynamic loader accepted a text file")
	}
	_, err := findLibrary(blasSpec([]int{13, 12}), []string{dir}, dir, false, dlopen)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("want *LoadError, got %T %v", err, err)
	}
	if !le.Found {
		t.Error("Found is false though the file exists")
	}
	msg := err.Error()
	// glibc: "<path>: invalid ELF header"; the loader's own words must survive.
	loaderWords := strings.TrimPrefix(direct.Error(), bad+": ")
	for _, want := range []string{"could not be loaded", bad, loaderWords, "KRONFED_CUDA_PATH"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
}

// dlerror's text is per thread; dlopen must read it on the thread that failed.
func TestDlopenKeepsLoaderMessage(t *testing.T) {
	for i := range 300 {
		_, err := dlopen("libkronfed-does-not-exist.so.7")
		if err == nil {
			t.Fatal("loaded a library that does not exist")
		}
		if msg := err.Error(); !strings.Contains(msg, "libkronfed-does-not-exist.so.7: ") || strings.HasSuffix(msg, ": ") {
			t.Fatalf("try %d: loader message lost: %q", i, msg)
		}
	}
}
