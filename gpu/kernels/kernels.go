// Package kernels holds kronfed's CUDA kernels as real CUDA C files (*.cu,
// embedded), a disk cache of their compiled images, and one Go launch
// wrapper per kernel.
//
// The .cu files are compiled at run time by NVRTC (package gpu/cuda), so they
// include nothing: no cuda_bf16.h, no math headers; bf16 is an unsigned short
// with explicit bit conversions, and −Inf is spelled __uint_as_float. Every
// kernel is extern "C" __global__, fp32 math, row-major, int widths and long
// long element counts. The CPU code in model/, adapter/ and train/ is the
// reference each kernel reproduces; each kernel's comment says which
// function, with its shapes and the launch geometry its wrapper uses.
//
// A wrapper validates its sizes (a non-positive size, or one that overflows
// the int32 the kernel takes, is an error and nothing is launched), chooses
// the grid, block and dynamic shared memory, converts the arguments to the
// kernel's C types and calls a Launcher, which the engine implements over
// its compiled modules and stream. Device pointers are uintptr; a zero
// pointer is an error unless the wrapper documents it as optional.
package kernels

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"sync"
)

//go:embed *.cu
var sourceFS embed.FS

// Source is one embedded CUDA C file.
type Source struct {
	Name    string   // file name, e.g. "norm.cu"
	Code    []byte   // the source text (shared: do not modify)
	Hash    string   // sha256 of Code, hex
	Entries []string // its extern "C" __global__ kernels, in file order
}

// Launcher launches the named kernel entry on the engine's stream. Arguments
// are passed by value in order; their Go types map to C as gpu/cuda's
// Stream.Launch does: uintptr → pointer, int32 → int, int64 → long long,
// uint64 → unsigned long long, float32 → float.
type Launcher interface {
	Launch(entry string, grid, block [3]uint32, sharedBytes uint32, args ...any) error
}

var (
	sourcesOnce sync.Once
	sources     []Source
	sourcesErr  error
)

// Sources returns the embedded kernel files sorted by name, each with its
// hash and entry points. The slice is shared; callers must not modify it.
func Sources() []Source {
	sourcesOnce.Do(func() { sources, sourcesErr = loadSources(sourceFS) })
	if sourcesErr != nil {
		// The files are embedded at build time: failing to read them is a
		// broken build, which TestSources catches.
		panic(sourcesErr)
	}
	return sources
}

// SourceFor returns the source file that defines entry.
func SourceFor(entry string) (Source, error) {
	for _, s := range Sources() {
		for _, e := range s.Entries {
			if e == entry {
				return s, nil
			}
		}
	}
	return Source{}, fmt.Errorf("kernels: no source defines entry %q", entry)
}

func loadSources(fsys fs.FS) ([]Source, error) {
	names, err := fs.Glob(fsys, "*.cu")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Source, 0, len(names))
	seen := map[string]string{}
	for _, name := range names {
		code, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("kernels: read %s: %w", name, err)
		}
		sum := sha256.Sum256(code)
		entries := ParseEntries(code)
		for _, e := range entries {
			if prev, dup := seen[e]; dup {
				return nil, fmt.Errorf("kernels: entry %s defined in both %s and %s", e, prev, name)
			}
			seen[e] = name
		}
		out = append(out, Source{Name: name, Code: code, Hash: hex.EncodeToString(sum[:]), Entries: entries})
	}
	return out, nil
}

// entryRE matches a kernel definition: extern "C" __global__ void, an
// optional __launch_bounds__(…), the name and its opening parenthesis.
var entryRE = regexp.MustCompile(`(?m)^\s*extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*\(`)

// ParseEntries lists the extern "C" __global__ kernels defined in a CUDA C
// source, in order of appearance. Definitions inside // comments are
// skipped.
func ParseEntries(code []byte) []string {
	var out []string
	for _, m := range entryRE.FindAllSubmatch(code, -1) {
		out = append(out, string(m[1]))
	}
	return out
}
