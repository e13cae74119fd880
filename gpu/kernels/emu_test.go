//go:build linux && (amd64 || arm64)

package kernels_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"unsafe"

	"github.com/ebitengine/purego"

	"github.com/kronfed/kronfed/gpu/kernels"
)

// The emulated device runs the very CUDA sources on the CPU: each .cu file
// is compiled as host C++ (clang++) with testdata/emu.h, which turns every
// CUDA thread into a fiber and emulates __syncthreads, warp shuffles and
// shared memory, then loaded with purego. Its memory is mmap'd host memory
// with a guard page after every buffer, so an out-of-bounds write or read
// past a buffer's end crashes the test instead of passing unnoticed.
// It checks the kernels' logic (indexing, masking, tiling, reductions)
// where no GPU is available; it cannot check NVRTC, timing or the memory
// model, which TestDeviceParity does on a real device.

type emuDevice struct {
	kernels map[string]emuKernel
	mu      sync.Mutex
	bufs    []emuBuf
}

type emuKernel struct {
	handle, launch uintptr
}

type emuBuf struct {
	mapping []byte // the whole mapping, guard page included
	data    []byte // the buffer, ending at the guard page
}

var (
	emuOnce sync.Once
	emuDev  *emuDevice
	emuErr  error
	emuSkip string
)

// openEmu builds (once per process) and returns the emulated device, or
// skips when clang++ is missing outside CI.
func openEmu(t *testing.T) *emuDevice {
	t.Helper()
	emuOnce.Do(func() { emuDev, emuSkip, emuErr = buildEmu() })
	if emuSkip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true: clang++ is required)", emuSkip)
		}
		t.Skip(emuSkip)
	}
	if emuErr != nil {
		t.Fatal(emuErr)
	}
	return emuDev
}

func buildEmu() (*emuDevice, string, error) {
	clang, err := exec.LookPath("clang++")
	if err != nil {
		return nil, "clang++ not found, so the kernels cannot be emulated on the CPU: " + err.Error(), nil
	}
	td, err := filepath.Abs("testdata")
	if err != nil {
		return nil, "", err
	}
	dir, err := os.MkdirTemp("", "kronfed-emu-")
	if err != nil {
		return nil, "", err
	}
	// The libraries stay loaded for the process; their files can go.
	defer os.RemoveAll(dir)
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
			libs[i], errs[i] = compileEmu(clang, td, dir, s)
		}()
	}
	wg.Wait()
	d := &emuDevice{kernels: map[string]emuKernel{}}
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
			d.kernels[e] = emuKernel{handle: k, launch: launch}
		}
	}
	return d, "", nil
}

// compileEmu turns one kernel file into an emulated shared library.
func compileEmu(clang, testdata, dir string, s kernels.Source) (string, error) {
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
		"-include", filepath.Join(testdata, "emu.h"), "-I", testdata, "-o", lib, src)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("compile %s for the emulator: %v\n%s", s.Name, err, out.String())
	}
	return lib, nil
}

func (d *emuDevice) emulated() bool { return true }
func (d *emuDevice) sync() error    { return nil }

// alloc maps bytes rounded up to 8, placed to end at a PROT_NONE page.
func (d *emuDevice) alloc(n int) (uintptr, error) {
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
	d.mu.Lock()
	d.bufs = append(d.bufs, emuBuf{mapping: m, data: data})
	d.mu.Unlock()
	return uintptr(unsafe.Pointer(&data[0])), nil
}

// find returns the bytes of the buffer holding [p, p+n).
func (d *emuDevice) find(p uintptr, n int) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range d.bufs {
		base := uintptr(unsafe.Pointer(&b.data[0]))
		if p >= base && p+uintptr(n) <= base+uintptr(len(b.data)) {
			off := int(p - base)
			return b.data[off : off+n], nil
		}
	}
	return nil, fmt.Errorf("emulator: [%#x, +%d) is not inside one allocation", p, n)
}

func (d *emuDevice) upload(dst uintptr, src []byte) error {
	b, err := d.find(dst, len(src))
	if err != nil {
		return err
	}
	copy(b, src)
	return nil
}

func (d *emuDevice) download(dst []byte, src uintptr) error {
	b, err := d.find(src, len(dst))
	if err != nil {
		return err
	}
	copy(dst, b)
	return nil
}

// free unmaps every buffer (the end of a test).
func (d *emuDevice) free() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range d.bufs {
		syscall.Munmap(b.mapping)
	}
	d.bufs = nil
}

func (d *emuDevice) Launch(entry string, grid, block [3]uint32, shared uint32, args ...any) error {
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
	r, _, _ := purego.SyscallN(k.launch, k.handle,
		uintptr(grid[0]), uintptr(grid[1]), uintptr(grid[2]),
		uintptr(block[0]), uintptr(block[1]), uintptr(block[2]), uintptr(shared),
		uintptr(unsafe.Pointer(&ptrs[0])), uintptr(unsafe.Pointer(&errBuf[0])), uintptr(len(errBuf)))
	runtime.KeepAlive(vals)
	if int32(r) != 0 {
		return fmt.Errorf("emulator: %s: %s", entry, string(bytes.TrimRight(errBuf, "\x00")))
	}
	return nil
}

// TestEmulatedParity runs every parity test on the CPU emulation of the
// kernels.
func TestEmulatedParity(t *testing.T) {
	d := openEmu(t)
	defer d.free()
	runParity(t, d)
}
