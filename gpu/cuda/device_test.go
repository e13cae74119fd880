package cuda

// Tests that need a GPU. They skip, with the discovery or driver error's
// text, where there is none; set KRONFED_REQUIRE_GPU=1 to make that a
// failure instead (on a GPU machine, so that a broken setup cannot pass as a skip).

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

var (
	testCtxOnce sync.Once
	testCtx     *Context
	testCtxErr  error
)

// requireDevice returns a context on device 0, shared by the tests (never
// closed: the process's end releases it), or skips the test saying why not.
func requireDevice(t *testing.T) *Context {
	t.Helper()
	testCtxOnce.Do(func() {
		if _, err := Load(); err != nil {
			testCtxErr = err
			return
		}
		testCtx, testCtxErr = Open(0)
	})
	if testCtxErr != nil {
		if os.Getenv("KRONFED_REQUIRE_GPU") != "" {
			t.Fatalf("KRONFED_REQUIRE_GPU is set but: %v", testCtxErr)
		}
		t.Skip(testCtxErr.Error())
	}
	return testCtx
}

func newTestStream(t *testing.T, c *Context) *Stream {
	t.Helper()
	s, err := c.NewStream()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Destroy(); err != nil {
			t.Error(err)
		}
	})
	return s
}

func mustAlloc(t *testing.T, c *Context, bytes int64) DevicePtr {
	t.Helper()
	p, err := c.Alloc(bytes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Free(p); err != nil {
			t.Error(err)
		}
	})
	return p
}

func TestDeviceInfo(t *testing.T) {
	c := requireDevice(t)
	d := c.Device()
	t.Logf("%v, %d SMs, %d B shared opt-in", d, d.SMs, d.MaxSharedOptin)
	if d.Name == "" || d.Major < 5 || d.SMs <= 0 || d.TotalMem < 1<<30 || d.MaxSharedOptin < 48<<10 {
		t.Errorf("implausible device %+v", d)
	}
	free, total, err := c.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	if total <= 0 || free <= 0 || free > total || total > d.TotalMem+1<<30 {
		t.Errorf("MemInfo free %d total %d, device %d", free, total, d.TotalMem)
	}
	n, err := DeviceCount()
	if err != nil || n < 1 {
		t.Fatalf("DeviceCount = %d, %v", n, err)
	}
	if _, err := Open(n); err == nil || !strings.Contains(err.Error(), "visible") {
		t.Errorf("Open(%d): %v", n, err)
	}
	if _, err := Open(-1); err == nil {
		t.Error("Open(-1) succeeded")
	}
	// A second retain and its release leave the shared context working.
	c2, err := Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c2.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c2.Alloc(16); err == nil {
		t.Error("Alloc on a closed context succeeded")
	}
	if err := c.Sync(); err != nil {
		t.Fatal(err)
	}
}

func roundTrip[T Elem](t *testing.T, c *Context, s *Stream, src []T) {
	t.Helper()
	var z T
	bytes := int64(len(src)) * int64(unsafe.Sizeof(z))
	a, b := mustAlloc(t, c, bytes), mustAlloc(t, c, bytes)
	if err := Upload(s, a, src); err != nil {
		t.Fatal(err)
	}
	if err := s.CopyDtoD(b, a, bytes); err != nil {
		t.Fatal(err)
	}
	got := make([]T, len(src))
	if err := Download(s, got, b); err != nil {
		t.Fatal(err)
	}
	for i := range src {
		if got[i] != src[i] {
			t.Fatalf("%T element %d: got %v, want %v", z, i, got[i], src[i])
		}
	}
}

func TestDeviceCopyRoundTrip(t *testing.T) {
	c := requireDevice(t)
	s := newTestStream(t, c)
	r := rand.New(rand.NewPCG(3, 4))
	const n = 1001
	f32, f64, i32, u16, u64 := make([]float32, n), make([]float64, n), make([]int32, n), make([]uint16, n), make([]uint64, n)
	for i := range n {
		f32[i], f64[i], i32[i], u16[i], u64[i] = r.Float32()-0.5, r.NormFloat64(), r.Int32()-1<<30, uint16(r.Uint32()), r.Uint64()
	}
	roundTrip(t, c, s, f32)
	roundTrip(t, c, s, f64)
	roundTrip(t, c, s, i32)
	roundTrip(t, c, s, u16)
	roundTrip(t, c, s, u64)
}

func TestDeviceMemset(t *testing.T) {
	c := requireDevice(t)
	s := newTestStream(t, c)
	const n = 256
	ones := make([]float32, n)
	for i := range ones {
		ones[i] = 1
	}
	p := mustAlloc(t, c, 4*n)
	if err := Upload(s, p, ones); err != nil {
		t.Fatal(err)
	}
	if err := s.Memset(p+64*4, 100*4); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, n)
	if err := Download(s, got, p); err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		want := float32(1)
		if i >= 64 && i < 164 {
			want = 0
		}
		if v != want {
			t.Fatalf("element %d = %v, want %v", i, v, want)
		}
	}
}

func TestDeviceStreamEventTiming(t *testing.T) {
	c := requireDevice(t)
	s1, s2 := newTestStream(t, c), newTestStream(t, c)
	start, err := c.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	end, err := c.NewEvent()
	if err != nil {
		t.Fatal(err)
	}
	defer start.Destroy()
	defer end.Destroy()
	const big = 256 << 20
	p := mustAlloc(t, c, big)
	if err := start.Record(s1); err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if err := s1.Memset(p, big); err != nil {
			t.Fatal(err)
		}
	}
	if err := end.Record(s1); err != nil {
		t.Fatal(err)
	}
	// s2 waits for s1's memsets, then writes a marker the host reads back.
	if err := s2.Wait(end); err != nil {
		t.Fatal(err)
	}
	if err := Upload(s2, p, []float32{42}); err != nil {
		t.Fatal(err)
	}
	got := make([]float32, 2)
	if err := Download(s2, got, p); err != nil {
		t.Fatal(err)
	}
	if got[0] != 42 || got[1] != 0 {
		t.Errorf("after the wait: %v, want [42 0]", got)
	}
	ms, err := Elapsed(start, end)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("10 × memset of 256 MiB: %.3f ms (%.0f GB/s)", ms, 10*big/float64(ms)/1e6)
	if ms <= 0 || ms > 10_000 {
		t.Errorf("elapsed %v ms", ms)
	}
}

const testKernels = `
extern "C" __global__ void axpb(float* y, const float* x, float a, double b, int n,
                                long long off, unsigned int u, unsigned long long big) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = a * x[i] + (float)b + (float)off + (float)u + (float)(big >> 40);
}

// Reverses n floats through dynamic shared memory (one block).
extern "C" __global__ void reverse(float* y, const float* x, int n) {
    extern __shared__ float buf[];
    for (int i = threadIdx.x; i < n; i += blockDim.x) buf[i] = x[i];
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) y[i] = buf[n - 1 - i];
}
`

func TestDeviceCompileAndLaunch(t *testing.T) {
	c := requireDevice(t)
	d := c.Device()
	maj, mnr, err := NVRTCVersion()
	if err != nil {
		t.Fatal(err)
	}
	archs, err := SupportedArchs()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("NVRTC %d.%d supports %v", maj, mnr, archs)

	cubin, arch, err := Compile([]byte(testKernels), "test.cu", d.Major, d.Minor)
	if err != nil {
		t.Fatal(err)
	}
	images := map[string][]byte{arch: cubin}
	// And PTX for the oldest supported arch, JIT-compiled by the driver.
	ptxArch := "compute_" + itoa(archs[0])
	ptx, err := compileArch([]byte(testKernels), "test.cu", ptxArch, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ptx), ".visible .entry axpb(") || ptx[len(ptx)-1] != 0 {
		t.Fatalf("PTX lacks the entry or its NUL:\n%.400s", ptx)
	}
	images[ptxArch] = ptx

	s := newTestStream(t, c)
	const n = 1000
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i) * 0.25
	}
	px, py := mustAlloc(t, c, 4*n), mustAlloc(t, c, 4*n)
	if err := Upload(s, px, x); err != nil {
		t.Fatal(err)
	}
	for a, img := range images {
		m, err := c.LoadModule(img)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		f, err := m.Function("axpb")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Memset(py, 4*n); err != nil {
			t.Fatal(err)
		}
		err = s.Launch(f, [3]uint32{(n + 127) / 128, 1, 1}, [3]uint32{128, 1, 1}, 0,
			py, px, float32(2), float64(0.5), int32(n), int64(3), uint32(4), uint64(5)<<40)
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, n)
		if err := Download(s, y, py); err != nil {
			t.Fatal(err)
		}
		for i := range y {
			if want := 2*x[i] + 0.5 + 3 + 4 + 5; y[i] != want {
				t.Fatalf("%s: y[%d] = %v, want %v", a, i, y[i], want)
			}
		}

		// 64 KiB of dynamic shared memory needs the opt-in.
		rev, err := m.Function("reverse")
		if err != nil {
			t.Fatal(err)
		}
		const rn = 16384
		big := make([]float32, rn)
		for i := range big {
			big[i] = float32(i)
		}
		pa, pb := mustAlloc(t, c, 4*rn), mustAlloc(t, c, 4*rn)
		if err := Upload(s, pa, big); err != nil {
			t.Fatal(err)
		}
		if err := rev.SetMaxDynamicShared(4 * rn); err != nil {
			t.Fatal(err)
		}
		if err := s.Launch(rev, [3]uint32{1, 1, 1}, [3]uint32{1024, 1, 1}, 4*rn, pb, pa, int32(rn)); err != nil {
			t.Fatal(err)
		}
		out := make([]float32, rn)
		if err := Download(s, out, pb); err != nil {
			t.Fatal(err)
		}
		for i := range out {
			if out[i] != float32(rn-1-i) {
				t.Fatalf("%s: reverse[%d] = %v", a, i, out[i])
			}
		}

		if _, err := m.Function("nope"); err == nil || !strings.Contains(err.Error(), "nope") {
			t.Errorf("missing function: %v", err)
		}
		if err := s.Launch(f, [3]uint32{1, 1, 1}, [3]uint32{1, 1, 1}, 0, py, 7); err == nil || !strings.Contains(err.Error(), "argument 1") {
			t.Errorf("int argument: %v", err)
		}
		if err := m.Unload(); err != nil {
			t.Fatal(err)
		}
		if err := s.Launch(f, [3]uint32{1, 1, 1}, [3]uint32{1, 1, 1}, 0); err == nil {
			t.Error("launch after Unload succeeded")
		}
	}
}

func TestDeviceCompileError(t *testing.T) {
	c := requireDevice(t)
	d := c.Device()
	_, _, err := Compile([]byte("extern \"C\" __global__ void k(float* y) { y[0] = undefined_name; }\n"), "broken.cu", d.Major, d.Minor)
	var ce *CompileError
	if err == nil || !errorsAs(err, &ce) {
		t.Fatalf("want *CompileError, got %v", err)
	}
	for _, want := range []string{"gpu: compile broken.cu for sm_", "undefined_name", "NVRTC "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func f32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

func bf16ToF32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// gemmCase uploads a random row-major problem, runs it and checks it
// against rowRef in float64 on the values the device saw.
func gemmCase(t *testing.T, c *Context, s *Stream, b *BLAS, dt DataType, tA, tB bool, m, n, k, batch int, strideB0 bool) {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(m*n*k), uint64(batch)))
	aRows, aCols := m, k
	if tA {
		aRows, aCols = k, m
	}
	bRows, bCols := k, n
	if tB {
		bRows, bCols = n, k
	}
	lda, ldb, ldc := aCols+3, bCols+1, n+2
	sa, sb, sc := aRows*lda, bRows*ldb, m*ldc
	if strideB0 {
		sb = 0
	}
	na, nb, nc := sa*batch, max(sb*batch, bRows*ldb), sc*batch
	// Host values, rounded to what the device stores.
	round := func(v float32) float32 {
		if dt == R16BF {
			return bf16ToF32(f32ToBF16(v))
		}
		return v
	}
	a64, b64, c64 := make([]float64, na), make([]float64, nb), make([]float64, nc)
	a32, b32, c32 := make([]float32, na), make([]float32, nb), make([]float32, nc)
	for i := range a32 {
		a32[i] = round(r.Float32()*2 - 1)
		a64[i] = float64(a32[i])
	}
	for i := range b32 {
		b32[i] = round(r.Float32()*2 - 1)
		b64[i] = float64(b32[i])
	}
	for i := range c32 {
		c32[i] = r.Float32()*2 - 1
		c64[i] = float64(c32[i])
	}
	const alpha, beta = 0.75, -0.5
	for i := range batch {
		bOff := i * sb
		rowRef(tA, tB, m, n, k, alpha, a64[i*sa:], lda, b64[bOff:], ldb, beta, c64[i*sc:], ldc)
	}

	esz := int64(dt.Size())
	pa, pb, pc := mustAlloc(t, c, int64(na)*esz), mustAlloc(t, c, int64(nb)*esz), mustAlloc(t, c, int64(nc)*4)
	upload := func(p DevicePtr, v []float32) {
		var err error
		if dt == R16BF {
			h := make([]uint16, len(v))
			for i, x := range v {
				h[i] = f32ToBF16(x)
			}
			err = Upload(s, p, h)
		} else {
			err = Upload(s, p, v)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	upload(pa, a32)
	upload(pb, b32)
	if err := Upload(s, pc, c32); err != nil {
		t.Fatal(err)
	}
	var err error
	if batch == 1 && !strideB0 {
		err = b.Gemm(tA, tB, m, n, k, alpha, pa, dt, lda, pb, dt, ldb, beta, pc, R32F, ldc)
	} else {
		err = b.GemmStridedBatched(tA, tB, m, n, k, alpha, pa, dt, lda, int64(sa), pb, dt, ldb, int64(sb), beta, pc, R32F, ldc, int64(sc), batch)
	}
	if err != nil {
		t.Fatal(err)
	}
	got := make([]float32, nc)
	if err := Download(s, got, pc); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if d := math.Abs(float64(got[i]) - c64[i]); d > 1e-4*(1+math.Abs(c64[i])) {
			t.Fatalf("%v transA=%v transB=%v m=%d n=%d k=%d batch=%d: C[%d] = %v, want %v", dt, tA, tB, m, n, k, batch, i, got[i], c64[i])
		}
	}
}

func TestDeviceGemm(t *testing.T) {
	c := requireDevice(t)
	s := newTestStream(t, c)
	b, err := c.NewBLAS(s)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Destroy()
	for _, dt := range []DataType{R32F, R16BF} {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				gemmCase(t, c, s, b, dt, tA, tB, 37, 29, 53, 1, false)
				gemmCase(t, c, s, b, dt, tA, tB, 7, 5, 11, 3, false)
				gemmCase(t, c, s, b, dt, tA, tB, 6, 9, 4, 4, true) // one B for every problem
			}
		}
	}
	// k = 0: C = beta·C.
	gemmCase(t, c, s, b, R32F, false, false, 3, 4, 0, 1, false)
	// Bad input is refused before cuBLAS sees it.
	if err := b.Gemm(false, false, 2, 3, 4, 1, 0, R32F, 3, 0, R32F, 3, 0, 0, R32F, 3); err == nil {
		t.Error("lda < k accepted")
	}
	if err := b.SetTF32(true); err != nil {
		t.Fatal(err)
	}
	if err := b.SetTF32(false); err != nil {
		t.Fatal(err)
	}
}

func TestDeviceOutOfMemory(t *testing.T) {
	c := requireDevice(t)
	_, total, err := c.MemInfo()
	if err != nil {
		t.Fatal(err)
	}
	ask := total + 1<<30
	p, err := c.Alloc(ask)
	if err == nil {
		c.Free(p)
		t.Fatalf("Alloc(%d) beyond the device's %d succeeded", ask, total)
	}
	t.Log(err)
	if !IsOutOfMemory(err) {
		t.Errorf("IsOutOfMemory(%v) = false", err)
	}
	for _, want := range []string{"cuMemAlloc(" + FormatBytes(ask) + ")", c.Device().Name, "device 0", "CUDA_ERROR_OUT_OF_MEMORY", "free ", " of " + FormatBytes(total)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

func TestDevicePool(t *testing.T) {
	c := requireDevice(t)
	s := newTestStream(t, c)
	p := NewPool(c)
	a, err := p.Get(1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := Upload(s, a, make([]float32, 250)); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := p.Put(a); err != nil {
		t.Fatal(err)
	}
	b, err := p.Get(900)
	if err != nil || b != a {
		t.Errorf("Get(900) = %#x, %v; want the cached %#x", b, err, a)
	}
	if st := p.Stats(); st.Allocs != 1 || st.Hits != 1 {
		t.Errorf("stats %+v", st)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// Calls from goroutines that hop between OS threads still find the context current.
func TestDeviceFromManyGoroutines(t *testing.T) {
	c := requireDevice(t)
	s := newTestStream(t, c)
	p := mustAlloc(t, c, 4)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				runtime.Gosched()
				mu.Lock()
				v := []int32{int32(g*100 + i)}
				err := Upload(s, p, v)
				out := []int32{-1}
				if err == nil {
					err = Download(s, out, p)
				}
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				if out[0] != v[0] {
					t.Errorf("got %d, want %d", out[0], v[0])
					return
				}
			}
		}()
	}
	wg.Wait()
}

func itoa(n int) string { return strconv.Itoa(n) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }
