package kernels_test

import (
	"fmt"
	"sync"
	"testing"
	"unsafe"

	"github.com/kronfed/kronfed/gpu/cuda"
	"github.com/kronfed/kronfed/gpu/kernels"
)

// cudaDevice is the real device: every source compiled by NVRTC for it,
// every entry loaded, launches on one stream.
type cudaDevice struct {
	ctx    *cuda.Context
	stream *cuda.Stream
	funcs  map[string]*cuda.Function
	mods   []*cuda.Module
	bufs   []cuda.DevicePtr
}

var (
	cudaOnce sync.Once
	cudaDev  *cudaDevice
	cudaSkip string
	cudaErr  error
)

// openCUDA is the one place device tests decide to skip: with no usable
// CUDA driver, NVRTC or device it skips with gpu/cuda's Load or Open error
// text. A kernel that NVRTC rejects, or a missing entry, fails the test.
func openCUDA(t *testing.T) *cudaDevice {
	t.Helper()
	cudaOnce.Do(func() { cudaDev, cudaSkip, cudaErr = buildCUDA() })
	if cudaSkip != "" {
		t.Skip(cudaSkip)
	}
	if cudaErr != nil {
		t.Fatal(cudaErr)
	}
	return cudaDev
}

func buildCUDA() (*cudaDevice, string, error) {
	libs, err := cuda.Load()
	if err != nil {
		return nil, "no CUDA: " + err.Error(), nil
	}
	ctx, err := cuda.Open(0)
	if err != nil {
		return nil, "no CUDA device: " + err.Error(), nil
	}
	s, err := ctx.NewStream()
	if err != nil {
		return nil, "", err
	}
	d := &cudaDevice{ctx: ctx, stream: s, funcs: map[string]*cuda.Function{}}
	dev := ctx.Device()
	for _, src := range kernels.Sources() {
		img, arch, err := cuda.Compile(src.Code, src.Name, dev.Major, dev.Minor)
		if err != nil {
			return nil, "", fmt.Errorf("NVRTC %d.%d on %v: %w", libs.NVRTCMajor, libs.NVRTCMinor, dev, err)
		}
		m, err := ctx.LoadModule(img)
		if err != nil {
			return nil, "", fmt.Errorf("load %s (%s): %w", src.Name, arch, err)
		}
		d.mods = append(d.mods, m)
		for _, e := range src.Entries {
			f, err := m.Function(e)
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", src.Name, err)
			}
			d.funcs[e] = f
		}
	}
	return d, "", nil
}

func (d *cudaDevice) emulated() bool { return false }

func (d *cudaDevice) Launch(entry string, grid, block [3]uint32, shared uint32, args ...any) error {
	f, ok := d.funcs[entry]
	if !ok {
		return fmt.Errorf("no kernel %q loaded", entry)
	}
	return d.stream.Launch(f, grid, block, shared, args...)
}

func (d *cudaDevice) alloc(n int) (uintptr, error) {
	p, err := d.ctx.Alloc(int64(n))
	if err != nil {
		return 0, err
	}
	d.bufs = append(d.bufs, p)
	return uintptr(p), nil
}

func (d *cudaDevice) upload(dst uintptr, src []byte) error {
	if err := d.stream.CopyHtoD(cuda.DevicePtr(dst), unsafe.Pointer(&src[0]), int64(len(src))); err != nil {
		return err
	}
	return d.stream.Sync() // src may change once we return
}

func (d *cudaDevice) download(dst []byte, src uintptr) error {
	if err := d.stream.CopyDtoH(unsafe.Pointer(&dst[0]), cuda.DevicePtr(src), int64(len(dst))); err != nil {
		return err
	}
	return d.stream.Sync()
}

func (d *cudaDevice) sync() error { return d.stream.Sync() }

// free releases the test's buffers.
func (d *cudaDevice) free(t *testing.T) {
	if err := d.stream.Sync(); err != nil {
		t.Errorf("sync: %v", err)
	}
	for _, p := range d.bufs {
		if err := d.ctx.Free(p); err != nil {
			t.Errorf("free: %v", err)
		}
	}
	d.bufs = nil
}

// TestDeviceParity runs every parity test on the real device (skipping,
// with gpu/cuda's error, where there is none).
func TestDeviceParity(t *testing.T) {
	d := openCUDA(t)
	defer d.free(t)
	runParity(t, d)
}
