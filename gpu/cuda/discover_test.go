package cuda

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func fakeEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestSearchDirsOrder(t *testing.T) {
	env := fakeEnv(map[string]string{
		EnvPath:        "/opt/a" + string(os.PathListSeparator) + "/opt/b/",
		"CUDA_HOME":    "/ch",
		"VIRTUAL_ENV":  "/venv",
		"CONDA_PREFIX": "/conda",
		"HOME":         "/home/u",
	})
	dirs := searchDirs(env, nil)
	if !reflect.DeepEqual(dirs, searchDirs(env, nil)) {
		t.Fatal("searchDirs is not a pure function of the environment")
	}
	idx := func(d string) int {
		i := slices.Index(dirs, d)
		if i < 0 {
			t.Fatalf("%s missing from %v", d, dirs)
		}
		return i
	}
	if dirs[0] != "/opt/a" || dirs[1] != "/opt/b" {
		t.Fatalf("KRONFED_CUDA_PATH must come first, got %v", dirs[:2])
	}
	order := []string{
		"/ch/lib64", "/ch/lib", "/ch/targets/*/lib",
		"/venv/lib/python3.*/site-packages/nvidia/*/lib",
		"/venv/lib/python3.*/dist-packages/nvidia/*/lib",
		"/conda/lib/python3.*/site-packages/nvidia/*/lib",
		"/conda/lib",
		"/usr/local/lib/python3.*/dist-packages/nvidia/*/lib",
		"/usr/lib/python3.*/site-packages/nvidia/*/lib",
		"/home/u/.local/lib/python3.*/site-packages/nvidia/*/lib",
		"/usr/local/cuda/lib64", "/usr/local/cuda/targets/*/lib",
		"/usr/lib64", "/usr/lib", "/usr/lib/wsl/lib",
	}
	prev := 1
	for _, d := range order {
		i := idx(d)
		if i <= prev {
			t.Errorf("%s at %d, not after the entry before it (at %d): %v", d, i, prev, dirs)
		}
		prev = i
	}
	for _, d := range dirs {
		if !filepath.IsAbs(d) {
			t.Errorf("relative folder %q in %v", d, dirs)
		}
	}
	if len(dedupe(slices.Clone(dirs))) != len(dirs) {
		t.Errorf("duplicates in %v", dirs)
	}
}

func TestSearchDirsEmptyEnvironment(t *testing.T) {
	dirs := searchDirs(fakeEnv(nil), nil)
	for _, d := range dirs {
		if !filepath.IsAbs(d) {
			t.Errorf("an unset variable produced the relative folder %q", d)
		}
	}
	if !slices.Contains(dirs, "/usr/local/cuda/lib64") {
		t.Errorf("no /usr/local/cuda/lib64 in %v", dirs)
	}
}

func TestFindLibraryNotFound(t *testing.T) {
	dir := t.TempDir()
	_, err := findLibrary(blasSpec([]int{13, 12}), searchDirs(fakeEnv(map[string]string{EnvPath: dir}), nil), dir, false, dlopen)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("want *LoadError, got %T %v", err, err)
	}
	if le.Found || le.Tried[0] != dir {
		t.Errorf("Found=%v Tried=%v", le.Found, le.Tried)
	}
	msg := err.Error()
	for _, want := range []string{"libcublas.so.13 or libcublas.so.12 not found", dir, "/usr/local/cuda/lib64", "set KRONFED_CUDA_PATH"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
	if strings.Contains(msg, "(unset)") {
		t.Errorf("KRONFED_CUDA_PATH is set, yet: %s", msg)
	}
}

func TestLoadErrorNamesTheVariable(t *testing.T) {
	dir := t.TempDir()
	_, _, err := load([]string{dir}, "", false, dlopen)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("want *LoadError, got %T %v", err, err)
	}
	msg := err.Error()
	for _, want := range []string{"gpu: libcuda.so.1 not found", "$KRONFED_CUDA_PATH (unset)", dir, "set KRONFED_CUDA_PATH to the folder that holds it"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q: %s", want, msg)
		}
	}
}

// recorder is an opener that succeeds for paths in ok and records every call.
type recorder struct {
	ok    map[string]bool
	calls []string
}

func (r *recorder) open(path string) (uintptr, error) {
	r.calls = append(r.calls, path)
	if r.ok[path] {
		return uintptr(len(r.calls)), nil
	}
	return 0, errors.New(path + ": refused")
}

func touch(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestFindLibraryOrderAndPreload(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	touch(t, filepath.Join(d1, "libcublas.so.12"),
		filepath.Join(d2, "libcublas.so.13"), filepath.Join(d2, "libcublasLt.so.13"), filepath.Join(d2, "libcublas.so.12"))

	// Folder order beats version: d1's 12 before d2's 13.
	r := &recorder{ok: map[string]bool{filepath.Join(d1, "libcublas.so.12"): true}}
	f, err := findLibrary(blasSpec([]int{13, 12}), []string{d1, d2}, "", true, r.open)
	if err != nil || f.path != filepath.Join(d1, "libcublas.so.12") {
		t.Fatalf("got %v, %v; calls %v", f, err, r.calls)
	}

	// Within a folder the newer major wins, after its libcublasLt.
	r = &recorder{ok: map[string]bool{filepath.Join(d2, "libcublasLt.so.13"): true, filepath.Join(d2, "libcublas.so.13"): true}}
	f, err = findLibrary(blasSpec([]int{13, 12}), []string{d1, d2}, "", true, r.open)
	if err != nil || f.path != filepath.Join(d2, "libcublas.so.13") {
		t.Fatalf("got %v, %v; calls %v", f, err, r.calls)
	}
	want := []string{filepath.Join(d1, "libcublas.so.12"), filepath.Join(d2, "libcublasLt.so.13"), filepath.Join(d2, "libcublas.so.13")}
	if !reflect.DeepEqual(r.calls, want) {
		t.Errorf("calls %v, want %v", r.calls, want)
	}

	// Nothing loads from the folders: the bare sonames go to the linker last.
	r = &recorder{ok: map[string]bool{"libcublas.so.12": true}}
	f, err = findLibrary(blasSpec([]int{13, 12}), []string{d1, d2}, "", true, r.open)
	if err != nil || f.path != "libcublas.so.12" {
		t.Fatalf("got %v, %v; calls %v", f, err, r.calls)
	}
	if got := r.calls[len(r.calls)-2:]; !reflect.DeepEqual(got, []string{"libcublas.so.13", "libcublas.so.12"}) {
		t.Errorf("linker calls %v", got)
	}

	// The driver limits the versions: only 12 offered.
	r = &recorder{ok: map[string]bool{filepath.Join(d2, "libcublas.so.12"): true, filepath.Join(d2, "libcublas.so.13"): true}}
	f, err = findLibrary(blasSpec(toolkitMajors(12080)), []string{d2}, "", false, r.open)
	if err != nil || f.path != filepath.Join(d2, "libcublas.so.12") {
		t.Fatalf("got %v, %v; calls %v", f, err, r.calls)
	}
}

func TestNVRTCPreloadsBuiltins(t *testing.T) {
	d := t.TempDir()
	touch(t, filepath.Join(d, "libnvrtc.so.13"), filepath.Join(d, "libnvrtc-builtins.so.13.0"), filepath.Join(d, "libnvrtc-builtins.so.12.8"))
	r := &recorder{ok: map[string]bool{filepath.Join(d, "libnvrtc-builtins.so.13.0"): true, filepath.Join(d, "libnvrtc.so.13"): true}}
	f, err := findLibrary(nvrtcSpec([]int{13, 12}), []string{d}, "", false, r.open)
	if err != nil || f.path != filepath.Join(d, "libnvrtc.so.13") {
		t.Fatalf("got %v, %v", f, err)
	}
	want := []string{filepath.Join(d, "libnvrtc-builtins.so.13.0"), filepath.Join(d, "libnvrtc.so.13")}
	if !reflect.DeepEqual(r.calls, want) {
		t.Errorf("calls %v, want %v", r.calls, want)
	}
}

func TestFindLibraryExpandsPatterns(t *testing.T) {
	root := t.TempDir()
	lib := filepath.Join(root, "lib", "python3.12", "site-packages", "nvidia", "cu13", "lib")
	if err := os.MkdirAll(lib, 0o755); err != nil {
		t.Fatal(err)
	}
	touch(t, filepath.Join(lib, "libnvrtc.so.13"))
	r := &recorder{ok: map[string]bool{filepath.Join(lib, "libnvrtc.so.13"): true}}
	dirs := searchDirs(fakeEnv(map[string]string{"VIRTUAL_ENV": root}), nil)
	f, err := findLibrary(nvrtcSpec([]int{13, 12}), dirs, "", false, r.open)
	if err != nil || f.path != filepath.Join(lib, "libnvrtc.so.13") {
		t.Fatalf("got %v, %v", f, err)
	}
}

func TestToolkitMajors(t *testing.T) {
	for _, c := range []struct {
		driver int
		want   []int
	}{{13000, []int{13, 12}}, {13020, []int{13, 12}}, {12080, []int{12}}, {12000, []int{12}}, {11080, nil}} {
		if got := toolkitMajors(c.driver); !reflect.DeepEqual(got, c.want) {
			t.Errorf("toolkitMajors(%d) = %v, want %v", c.driver, got, c.want)
		}
	}
}

// Load on this machine either works or fails with a *LoadError (no GPU here)
// or a driver that is too old; never anything else.
func TestLoadOnThisMachine(t *testing.T) {
	l, err := Load()
	if err != nil {
		var le *LoadError
		if !errors.As(err, &le) && !strings.Contains(err.Error(), "update the driver") {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
		t.Logf("no CUDA here: %v", err)
		return
	}
	t.Logf("loaded %+v", *l)
	if l.DriverVersion < 12000 || l.NVRTCMajor < 12 || l.BLASVersion < 120000 {
		t.Errorf("implausible versions %+v", *l)
	}
	_, err2 := Load()
	if err2 != nil {
		t.Errorf("second Load differs: %v", err2)
	}
}

// TestPythonSitePackagesSearched: the python3 on $PATH (pyenv's here) names
// its site-packages, and their nvidia/*/lib folders join the search, before
// the system folders, so PyTorch's CUDA wheels are found wherever that
// Python lives.
func TestPythonSitePackagesSearched(t *testing.T) {
	sites := pythonSitePackages()
	if _, err := exec.LookPath("python3"); err != nil {
		if sites != nil {
			t.Fatalf("no python3, yet sites %v", sites)
		}
		t.Skip("no python3 on $PATH")
	}
	if len(sites) == 0 {
		t.Fatal("python3 is on $PATH but named no site-packages folder")
	}
	dirs := searchDirs(fakeEnv(nil), sites)
	want := filepath.Join(sites[0], "nvidia", "*", "lib")
	at, system := slices.Index(dirs, want), slices.Index(dirs, "/usr/local/cuda/lib64")
	if at < 0 || at > system {
		t.Fatalf("%s at %d, the system folders from %d: %v", want, at, system, dirs)
	}
}
