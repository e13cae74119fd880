//go:build linux && (amd64 || arm64)

// Package emu runs gpu/kernels' CUDA sources on the CPU, for tests on
// machines without a GPU. Each .cu file is compiled as host C++ with clang++
// and emu.h, which turns every CUDA thread into a fiber and emulates
// __syncthreads, warp shuffles and shared memory; the libraries are loaded
// with purego. Its memory is mmap'd host memory with a guard page after
// every buffer, so a kernel that reads or writes past a buffer's end crashes
// the test instead of passing unnoticed.
//
// It checks the kernels' logic (indexing, masking, tiling, reductions) and
// the engine's use of them; it cannot check NVRTC, registers, timing or the
// GPU memory model — only a real device can, and passing here is not a
// device check.
package emu

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/kronfed/kronfed/gpu/kernels"
)

var (
	//go:embed emu.h
	emuHeader []byte
	//go:embed emu_impl.h
	emuImpl []byte
)

// Device is the emulated GPU: the compiled kernels and the buffers
// allocated on it. Its methods are safe for concurrent use, but launches
// run one at a time.
type Device struct {
	kernels map[string]kernel
	mu      sync.Mutex
	bufs    map[uintptr]buffer // by data address
	launch  sync.Mutex
}

type kernel struct {
	handle, launch uintptr
}

type buffer struct {
	mapping []byte // the whole mapping, guard page included
	data    []byte // the buffer, ending at the guard page
}

var (
	once    sync.Once
	dev     *Device
	openErr error
	skip    string
)

// TB is the part of testing.TB that Require uses (this package stays free
// of package testing: package gpu, which production binaries link, holds
// the emulated backend).
type TB interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// Require returns the emulator for a test, or skips the test when clang++
// is missing — except under CI=true, where the emulated tests must run and
// a missing clang++ fails them.
func Require(t TB) *Device {
	t.Helper()
	d, skip, err := Open()
	if skip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: clang++ is required)", skip)
		}
		t.Skip(skip)
	}
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Open builds the emulator (once per process) from kernels.Sources(). When
// clang++ is missing it returns a non-empty skip reason instead.
func Open() (d *Device, skipReason string, err error) {
	once.Do(func() { dev, skip, openErr = build() })
	return dev, skip, openErr
}

func build() (*Device, string, error) {
	clang, err := exec.LookPath("clang++")
	if err != nil {
		return nil, "clang++ not found, so the kernels cannot be emulated on the CPU: " + err.Error(), nil
	}
	dir, err := os.MkdirTemp("", "kronfed-emu-")
	if err != nil {
		return nil, "", err
	}
	// The libraries stay loaded for the process; their files can go.
	defer os.RemoveAll(dir)
	for name, data := range map[string][]byte{"emu.h": emuHeader, "emu_impl.h": emuImpl} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			return nil, "", err
		}
	}
	srcs := kernels.Sources()
	libs := make([]string, len(srcs))
	errs := make([]error, len(srcs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, runtime.NumCPU()))
	for i, s := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			libs[i], errs[i] = compile(clang, dir, s)
		}()
	}
	wg.Wait()
	d := &Device{kernels: map[string]kernel{}, bufs: map[uintptr]buffer{}}
	for i, s := range srcs {
		if errs[i] != nil {
			return nil, "", errs[i]
		}
		h, err := purego.Dlopen(libs[i], purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err != nil {
			return nil, "", fmt.Errorf("load emulated %s: %w", s.Name, err)
		}
		launch, err := purego.Dlsym(h, "emu_launch")
		if err != nil {
			return nil, "", fmt.Errorf("emulated %s: %w", s.Name, err)
		}
		for _, e := range s.Entries {
			sym, err := purego.Dlsym(h, "emu_entry_"+e)
			if err != nil {
				return nil, "", fmt.Errorf("emulated %s: %w", s.Name, err)
			}
			k, _, _ := purego.SyscallN(sym)
			d.kernels[e] = kernel{handle: k, launch: launch}
		}
	}
	return d, "", nil
}

// compile turns one kernel file into an emulated shared library.
func compile(clang, dir string, s kernels.Source) (string, error) {
	code := strings.ReplaceAll(string(s.Code), "extern __shared__", "EMU_EXTERN_SHARED")
	code = strings.ReplaceAll(code, "__shared__", "EMU_SHARED")
	var b strings.Builder
	b.WriteString(code)
	b.WriteString("\n#include \"emu_impl.h\"\n")
	for _, e := range s.Entries {
		fmt.Fprintf(&b, "extern \"C\" void* emu_entry_%s(void) { return emu::make_kernel(&%s); }\n", e, e)
	}
	base := strings.TrimSuffix(s.Name, ".cu")
	src := filepath.Join(dir, base+".cpp")
	lib := filepath.Join(dir, base+".so")
	if err := os.WriteFile(src, []byte(b.String()), 0o644); err != nil {
		return "", err
	}
	cmd := exec.Command(clang, "-x", "c++", "-std=c++20", "-O1", "-fPIC", "-shared", "-pthread",
		"-include", filepath.Join(dir, "emu.h"), "-I", dir, "-o", lib, src)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("compile %s for the emulator: %v\n%s", s.Name, err, out.String())
	}
	return lib, nil
}

// Alloc maps n bytes (rounded up to 8) placed to end at a PROT_NONE page.
func (d *Device) Alloc(n int) (uintptr, error) {
	if n <= 0 {
		return 0, fmt.Errorf("emulator: allocation of %d bytes", n)
	}
	size := (n + 7) &^ 7
	page := os.Getpagesize()
	total := (size+page-1)/page*page + page
	m, err := syscall.Mmap(-1, 0, total, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return 0, err
	}
	if err := syscall.Mprotect(m[total-page:], syscall.PROT_NONE); err != nil {
		return 0, err
	}
	data := m[total-page-size : total-page]
	p := uintptr(unsafe.Pointer(&data[0]))
	d.mu.Lock()
	d.bufs[p] = buffer{mapping: m, data: data}
	d.mu.Unlock()
	return p, nil
}

// Free unmaps the buffer Alloc returned at p.
func (d *Device) Free(p uintptr) error {
	d.mu.Lock()
	b, ok := d.bufs[p]
	delete(d.bufs, p)
	d.mu.Unlock()
	if !ok {
		return fmt.Errorf("emulator: free of %#x, which Alloc did not return", p)
	}
	return syscall.Munmap(b.mapping)
}

// Bytes returns the host bytes of [p, p+n), which must lie inside one
// allocation.
func (d *Device) Bytes(p uintptr, n int) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for base, b := range d.bufs {
		if p >= base && p+uintptr(n) <= base+uintptr(len(b.data)) {
			off := int(p - base)
			return b.data[off : off+n], nil
		}
	}
	return nil, fmt.Errorf("emulator: [%#x, +%d) is not inside one allocation", p, n)
}

// Upload copies src to device address dst.
func (d *Device) Upload(dst uintptr, src []byte) error {
	b, err := d.Bytes(dst, len(src))
	if err != nil {
		return err
	}
	copy(b, src)
	return nil
}

// Download copies len(dst) bytes from device address src.
func (d *Device) Download(dst []byte, src uintptr) error {
	b, err := d.Bytes(src, len(dst))
	if err != nil {
		return err
	}
	copy(dst, b)
	return nil
}

// FreeAll unmaps every buffer (the end of a test).
func (d *Device) FreeAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for p, b := range d.bufs {
		syscall.Munmap(b.mapping)
		delete(d.bufs, p)
	}
}

// Launch runs a kernel to completion (kernels.Launcher).
func (d *Device) Launch(entry string, grid, block [3]uint32, shared uint32, args ...any) error {
	k, ok := d.kernels[entry]
	if !ok {
		return fmt.Errorf("emulator: no kernel %q", entry)
	}
	vals, err := packArgs(args)
	if err != nil {
		return fmt.Errorf("emulator: %s: %w", entry, err)
	}
	if len(vals) == 0 {
		vals = []uint64{0}
	}
	ptrs := make([]uintptr, len(vals))
	errBuf := make([]byte, 512)
	var pin runtime.Pinner
	defer pin.Unpin()
	pin.Pin(&vals[0])
	pin.Pin(&ptrs[0])
	pin.Pin(&errBuf[0])
	for i := range vals {
		ptrs[i] = uintptr(unsafe.Pointer(&vals[i]))
	}
	d.launch.Lock()
	r, _, _ := purego.SyscallN(k.launch, k.handle,
		uintptr(grid[0]), uintptr(grid[1]), uintptr(grid[2]),
		uintptr(block[0]), uintptr(block[1]), uintptr(block[2]), uintptr(shared),
		uintptr(unsafe.Pointer(&ptrs[0])), uintptr(unsafe.Pointer(&errBuf[0])), uintptr(len(errBuf)))
	d.launch.Unlock()
	runtime.KeepAlive(vals)
	if int32(r) != 0 {
		return fmt.Errorf("emulator: %s: %s", entry, string(bytes.TrimRight(errBuf, "\x00")))
	}
	return nil
}

// packArgs lays out launch arguments as cuLaunchKernel's kernelParams
// expects them: one 8-byte slot per argument holding its C value.
func packArgs(args []any) ([]uint64, error) {
	vals := make([]uint64, len(args))
	for i, a := range args {
		var b [8]byte
		switch v := a.(type) {
		case uintptr:
			binary.NativeEndian.PutUint64(b[:], uint64(v))
		case int32:
			binary.NativeEndian.PutUint32(b[:], uint32(v))
		case uint32:
			binary.NativeEndian.PutUint32(b[:], v)
		case int64:
			binary.NativeEndian.PutUint64(b[:], uint64(v))
		case uint64:
			binary.NativeEndian.PutUint64(b[:], v)
		case float32:
			binary.NativeEndian.PutUint32(b[:], math.Float32bits(v))
		case float64:
			binary.NativeEndian.PutUint64(b[:], math.Float64bits(v))
		default:
			return nil, fmt.Errorf("launch argument %d has unsupported type %T", i, a)
		}
		vals[i] = binary.NativeEndian.Uint64(b[:])
	}
	return vals, nil
}
