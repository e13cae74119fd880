// Package sharedtest locates the read-only assets in ../shared (real models,
// configs and datasets) for tests. In CI (CI set) a missing folder fails the
// test; elsewhere the test is skipped with a message.
package sharedtest

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the shared folder: $KRONFED_SHARED, or the "shared" folder beside
// the checkout, found by walking up from the test's working directory.
func Dir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("KRONFED_SHARED"); dir != "" {
		return require(t, dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return require(t, filepath.Join(filepath.Dir(dir), "shared"))
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return require(t, filepath.Join(wd, "shared"))
		}
		dir = parent
	}
}

// Path returns a file or folder inside the shared folder, e.g.
// Path(t, "models", "configs", "mistral-7b-v0.1.json").
func Path(t testing.TB, elem ...string) string {
	t.Helper()
	return filepath.Join(append([]string{Dir(t)}, elem...)...)
}

func require(t testing.TB, dir string) string {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "models")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("shared assets not found at %s (set KRONFED_SHARED): %v", dir, err)
		}
		t.Skipf("shared assets not found at %s (set KRONFED_SHARED)", dir)
	}
	return dir
}
