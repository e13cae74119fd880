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
func openCUDA(t testing.TB) *cudaDevice {
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
func (d *cudaDevice) free(t testing.TB) {
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

// BenchmarkDeviceAttention times the fused attention on the device at a
// Mistral-7B-like shape (HD 128, 32 heads over 8 KV heads, causal) and a
// BERT-base-like one, reporting the useful TFLOP/s (causal: half the dense
// work). It skips without a device.
func BenchmarkDeviceAttention(b *testing.B) {
	d := openCUDA(b)
	defer d.free(b)
	for _, s := range []kernels.AttentionShape{
		{B: 2, T: 1024, H: 32, KV: 8, HD: 128, Causal: true},
		{B: 8, T: 128, H: 12, KV: 12, HD: 64},
	} {
		rng := newRNG(1)
		qn, kn := s.B*s.T*s.H*s.HD, s.B*s.T*s.KV*s.HD
		q, k, v, dout := put(b, d, randn(rng, qn, 1)), put(b, d, randn(rng, kn, 1)), put(b, d, randn(rng, kn, 1)), put(b, d, randn(rng, qn, 1))
		out, stats, dsum := put(b, d, make([]float32, qn)), put(b, d, make([]float32, s.B*s.H*s.T*2)), put(b, d, make([]float32, s.B*s.H*s.T))
		dq, dk, dv := put(b, d, make([]float32, qn)), put(b, d, make([]float32, kn)), put(b, d, make([]float32, kn))
		// Forward: 2 GEMM-like products of B·H·T²·HD multiply-adds.
		flops := 4 * float64(s.B*s.H) * float64(s.T) * float64(s.T) * float64(s.HD)
		if s.Causal {
			flops /= 2
		}
		name := fmt.Sprintf("T%d_H%d_KV%d_HD%d", s.T, s.H, s.KV, s.HD)
		b.Run(name+"/forward", func(b *testing.B) {
			for b.Loop() {
				must(b, kernels.AttentionForward(d, out, stats, q, k, v, 0, 0, 0, s))
				must(b, d.sync()) // time the kernel, not the launch queue
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
		})
		b.Run(name+"/backward", func(b *testing.B) {
			for b.Loop() {
				must(b, kernels.AttentionBackward(d, dq, dk, dv, dout, out, stats, dsum, q, k, v, 0, 0, 0, s))
				must(b, d.sync())
			}
			// Backward: 5 products (s, dP, dq, dk, dv), 2.5× the forward.
			b.ReportMetric(2.5*flops*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOP/s")
		})
	}
}
