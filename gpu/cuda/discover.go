package cuda

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// EnvPath names the environment variable that lists folders (separated by
// os.PathListSeparator) searched first for libcuda, cuBLAS and NVRTC.
const EnvPath = "KRONFED_CUDA_PATH"

// LoadError is a library that could not be found or loaded. Error() names the
// library, every place looked and the environment variable to set, e.g.
//
//	gpu: libcublas.so.13 or libcublas.so.12 not found; looked in $KRONFED_CUDA_PATH (unset),
//	/usr/local/cuda/lib64, ... and the dynamic linker's path; set KRONFED_CUDA_PATH to the
//	folder that holds it (dynamic loader: libcublas.so.13: cannot open shared object file: ...)
type LoadError struct {
	Library  string   // "libcublas.so.13 or libcublas.so.12"
	Tried    []string // folders searched in order; entries with * are glob patterns
	Err      error    // what the dynamic loader said for each file it was given; may be nil
	EnvValue string   // $KRONFED_CUDA_PATH when the search ran
	Found    bool     // some candidate file existed but the loader refused it
	Linker   bool     // the bare soname was also tried through the dynamic linker
}

func (e *LoadError) Error() string {
	var b strings.Builder
	b.WriteString("gpu: ")
	b.WriteString(e.Library)
	loader := ""
	if e.Err != nil {
		loader = strings.ReplaceAll(e.Err.Error(), "\n", "; ")
	}
	if e.Found {
		b.WriteString(" was found but could not be loaded: ")
		b.WriteString(loader)
		b.WriteString("; looked in ")
	} else {
		b.WriteString(" not found; looked in ")
	}
	places := make([]string, 0, len(e.Tried)+1)
	if e.EnvValue == "" {
		places = append(places, "$"+EnvPath+" (unset)")
	}
	places = append(places, e.Tried...)
	b.WriteString(strings.Join(places, ", "))
	if e.Linker {
		b.WriteString(" and the dynamic linker's path")
	}
	b.WriteString("; set ")
	b.WriteString(EnvPath)
	if e.Found {
		b.WriteString(" to the folder that holds a working copy")
	} else {
		b.WriteString(" to the folder that holds it")
		if loader != "" {
			b.WriteString(" (dynamic loader: ")
			b.WriteString(loader)
			b.WriteString(")")
		}
	}
	return b.String()
}

func (e *LoadError) Unwrap() error { return e.Err }

// searchDirs is the ordered list of folders searched for the CUDA libraries,
// a pure function of the environment (getenv) and the site-packages folders
// of the python3 on $PATH (pySites, see pythonSitePackages). Entries containing * are glob
// patterns, expanded when searched. The bare soname through the dynamic
// linker (ld.so.cache, LD_LIBRARY_PATH, RUNPATH) comes after all of them.
func searchDirs(getenv func(string) string, pySites []string) []string {
	var dirs []string
	add := func(d ...string) {
		for _, x := range d {
			if x != "" {
				dirs = append(dirs, filepath.Clean(x))
			}
		}
	}
	// 1. What the user said.
	for _, d := range filepath.SplitList(getenv(EnvPath)) {
		add(d)
	}
	// 2. A toolkit the environment points at.
	for _, v := range []string{"CUDA_HOME", "CUDA_PATH"} {
		if root := getenv(v); root != "" {
			add(filepath.Join(root, "lib64"), filepath.Join(root, "lib"), filepath.Join(root, "targets", "*", "lib"))
		}
	}
	// 3. pip wheels: CUDA 12 wheels put each library in nvidia/<name>/lib
	// (nvidia/cublas/lib, nvidia/cuda_nvrtc/lib), CUDA 13 wheels put them all
	// in nvidia/cu13/lib; nvidia/*/lib covers both. conda's toolkit packages
	// put them straight into $CONDA_PREFIX/lib.
	wheels := func(prefix string) {
		if prefix == "" {
			return
		}
		for _, pk := range []string{"site-packages", "dist-packages"} {
			add(filepath.Join(prefix, "lib", "python3.*", pk, "nvidia", "*", "lib"))
		}
	}
	wheels(getenv("VIRTUAL_ENV"))
	if conda := getenv("CONDA_PREFIX"); conda != "" {
		wheels(conda)
		add(filepath.Join(conda, "lib"))
	}
	wheels("/usr/local")
	wheels("/usr")
	wheels("/opt/conda")
	if home := getenv("HOME"); home != "" {
		wheels(filepath.Join(home, ".local"))
	}
	add(wheelDirs(pySites)...)
	// 4. The standard toolkit install.
	add("/usr/local/cuda/lib64", "/usr/local/cuda/targets/*/lib")
	// 5. Where distributions and the NVIDIA container runtime put the driver.
	if triple := multiarch(runtime.GOARCH); triple != "" {
		add("/usr/lib/"+triple, "/lib/"+triple)
	}
	add("/usr/lib64", "/usr/lib", "/usr/lib/wsl/lib")
	return dedupe(dirs)
}

// pythonSitePackages asks the python3 on $PATH for its site-packages
// folders, so the nvidia-* wheels of a PyTorch install are found wherever
// that Python lives (pyenv, a venv that is not activated, a distribution's
// own layout). No python3, or one that fails, gives nothing.
func pythonSitePackages() []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "python3", "-c",
		"import site; print('\\n'.join(site.getsitepackages() + [site.getusersitepackages()]))").Output()
	if err != nil {
		return nil
	}
	return strings.Fields(string(out))
}

// wheelDirs turns site-packages folders into the wheels' library folders.
func wheelDirs(sites []string) []string {
	var out []string
	for _, s := range sites {
		out = append(out, filepath.Join(s, "nvidia", "*", "lib"))
	}
	return out
}

// multiarch is Debian's library folder name for a Go architecture.
func multiarch(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64-linux-gnu"
	case "arm64":
		return "aarch64-linux-gnu"
	case "ppc64le":
		return "powerpc64le-linux-gnu"
	}
	return ""
}

func dedupe(xs []string) []string {
	seen := make(map[string]bool, len(xs))
	out := xs[:0]
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// expandDirs expands the glob patterns among dirs, keeping the order; a
// pattern that matches nothing contributes nothing.
func expandDirs(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		if !strings.ContainsAny(d, "*?[") {
			out = append(out, d)
			continue
		}
		matches, err := filepath.Glob(d)
		if err != nil {
			continue
		}
		out = append(out, matches...)
	}
	return dedupe(out)
}

// libSpec says what to look for: file names in order of preference, and
// which sibling files must be loaded first from the same folder.
type libSpec struct {
	names   []string                        // "libcublas.so.13", "libcublas.so.12"
	preload func(dir, name string) []string // paths to load (RTLD_GLOBAL) before dir/name; may be nil
}

func (s libSpec) display() string { return strings.Join(s.names, " or ") }

// opener loads one shared object (path or bare soname) and returns its handle.
type opener func(path string) (uintptr, error)

// found is a loaded library: the path (or soname) given to the loader and its handle.
type found struct {
	path   string
	handle uintptr
}

// findLibrary searches dirs (patterns allowed) in order for spec's files,
// preferring earlier folders, and within a folder earlier names; then, when
// linker is set, the bare sonames through the dynamic linker. The first file
// that loads wins. env is $KRONFED_CUDA_PATH, only for the error message.
func findLibrary(spec libSpec, dirs []string, env string, linker bool, open opener) (found, error) {
	var errs []error
	anyFound := false
	for _, dir := range expandDirs(dirs) {
		for _, name := range spec.names {
			path := filepath.Join(dir, name)
			if st, err := os.Stat(path); err != nil || st.IsDir() {
				continue
			}
			anyFound = true
			h, err := openWithDeps(spec, dir, name, open)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			return found{path: path, handle: h}, nil
		}
	}
	if linker {
		for _, name := range spec.names {
			h, err := open(name)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			return found{path: name, handle: h}, nil
		}
	}
	return found{}, &LoadError{
		Library:  spec.display(),
		Tried:    dirs,
		Err:      errors.Join(errs...),
		EnvValue: env,
		Found:    anyFound,
		Linker:   linker,
	}
}

// openWithDeps loads dir/name after the siblings spec.preload names, so that
// libcublas finds the libcublasLt beside it and NVRTC the builtins beside it
// even when that folder is on no loader path (a dependency already loaded
// under its soname satisfies later lookups of that soname).
func openWithDeps(spec libSpec, dir, name string, open opener) (uintptr, error) {
	if spec.preload != nil {
		for _, dep := range spec.preload(dir, name) {
			if _, err := open(dep); err != nil {
				return 0, err
			}
		}
	}
	return open(filepath.Join(dir, name))
}

// siblingIfPresent returns dir/file when it exists.
func siblingIfPresent(dir, file string) []string {
	p := filepath.Join(dir, file)
	if st, err := os.Stat(p); err == nil && !st.IsDir() {
		return []string{p}
	}
	return nil
}

// Library specs. The versions offered are limited by the driver (see load).
func driverSpec() libSpec { return libSpec{names: []string{"libcuda.so.1"}} }

func blasSpec(majors []int) libSpec {
	return libSpec{
		names: versioned("libcublas.so.", majors),
		preload: func(dir, name string) []string {
			major := strings.TrimPrefix(name, "libcublas.so.")
			return siblingIfPresent(dir, "libcublasLt.so."+major)
		},
	}
}

func nvrtcSpec(majors []int) libSpec {
	return libSpec{
		names: versioned("libnvrtc.so.", majors),
		preload: func(dir, name string) []string {
			// libnvrtc-builtins.so.13.0 (CUDA 13), libnvrtc-builtins.so.12.4 (CUDA 12.4):
			// NVRTC dlopens it by soname at compile time.
			major := strings.TrimPrefix(name, "libnvrtc.so.")
			matches, _ := filepath.Glob(filepath.Join(dir, "libnvrtc-builtins.so."+major+".*"))
			if len(matches) == 0 {
				return nil
			}
			return matches[len(matches)-1:] // Glob sorts; the last is the newest minor
		},
	}
}

func versioned(base string, majors []int) []string {
	out := make([]string, len(majors))
	for i, m := range majors {
		out[i] = base + strconv.Itoa(m)
	}
	return out
}

// toolkitMajors are the CUDA major versions of cuBLAS and NVRTC this package
// binds, newest first, limited to what the driver runs: a CUDA 13 library
// needs a CUDA 13 driver (580+); a driver too old for all of them gives none.
func toolkitMajors(driverVersion int) []int {
	var out []int
	for _, m := range []int{13, 12} {
		if driverVersion/1000 >= m {
			out = append(out, m)
		}
	}
	return out
}
