package cuda

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
)

// fakeDevice is a deterministic backing: a bump allocator with a capacity,
// failing like the driver when full.
type fakeDevice struct {
	mu       sync.Mutex
	capacity int64
	used     int64
	next     DevicePtr
	blocks   map[DevicePtr]int64
	allocs   int
	frees    int
}

func newFakeDevice(capacity int64) *fakeDevice {
	return &fakeDevice{capacity: capacity, next: 0x10000, blocks: map[DevicePtr]int64{}}
}

func (f *fakeDevice) alloc(n int64) (DevicePtr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.used+n > f.capacity {
		return 0, &Error{Op: fmt.Sprintf("cuMemAlloc(%s) on fake", FormatBytes(n)), Code: cudaErrorOutOfMemory,
			Name: "CUDA_ERROR_OUT_OF_MEMORY", Desc: "out of memory", API: "CUDA"}
	}
	p := f.next
	f.next += DevicePtr(n)
	f.used += n
	f.blocks[p] = n
	f.allocs++
	return p, nil
}

func (f *fakeDevice) free(p DevicePtr) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, ok := f.blocks[p]
	if !ok {
		return fmt.Errorf("fake: free of unknown %#x", uintptr(p))
	}
	delete(f.blocks, p)
	f.used -= n
	f.frees++
	return nil
}

func (f *fakeDevice) memInfo() (int64, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.capacity - f.used, f.capacity, nil
}

const mib = 1 << 20

func TestRoundSize(t *testing.T) {
	for in, want := range map[int64]int64{
		0: 512, 1: 512, 512: 512, 513: 1024, 1000: 1024, mib - 1: mib, mib: mib,
		mib + 1: 2 * mib, 2 * mib: 2 * mib, 2*mib + 1: 4 * mib, 5 * mib: 6 * mib,
	} {
		got, err := roundSize(in)
		if err != nil || got != want {
			t.Errorf("roundSize(%d) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []int64{-1, math.MaxInt64 - 1} {
		if _, err := roundSize(bad); err == nil {
			t.Errorf("roundSize(%d) accepted", bad)
		}
	}
}

func TestPoolReuse(t *testing.T) {
	dev := newFakeDevice(64 * mib)
	p := newPool(dev, "fake device")
	a, err := p.Get(1000)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Put(a); err != nil {
		t.Fatal(err)
	}
	b, err := p.Get(700) // also rounds to 1024: the same block
	if err != nil || b != a {
		t.Fatalf("Get(700) = %#x, %v; want the cached %#x", b, err, a)
	}
	c, err := p.Get(1000) // a is out: a new block
	if err != nil || c == a {
		t.Fatalf("Get(1000) = %#x, %v", c, err)
	}
	d, err := p.Get(3 * mib) // 4 MiB class
	if err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	want := PoolStats{InUse: 1024 + 1024 + 4*mib, Cached: 0, Peak: 1024 + 1024 + 4*mib, PeakReserved: 1024 + 1024 + 4*mib, Gets: 4, Allocs: 3, Hits: 1}
	if s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
	if dev.allocs != 3 || dev.used != 2048+4*mib {
		t.Errorf("device saw %d allocations, %d bytes", dev.allocs, dev.used)
	}
	for _, x := range []DevicePtr{b, c, d} {
		if err := p.Put(x); err != nil {
			t.Fatal(err)
		}
	}
	s = p.Stats()
	if s.InUse != 0 || s.Cached != 2048+4*mib || s.Peak != want.Peak {
		t.Errorf("after Put: %+v", s)
	}
	// A reset peak starts from what is held now: nothing in use, the cache.
	p.ResetPeak()
	if s = p.Stats(); s.Peak != 0 || s.PeakReserved != 2048+4*mib {
		t.Errorf("after ResetPeak: %+v", s)
	}
	// Different size classes do not share blocks.
	e, _ := p.Get(2 * mib)
	if e == d {
		t.Error("a 2 MiB request got the 4 MiB block")
	}
}

func TestPoolPutUnknown(t *testing.T) {
	p := newPool(newFakeDevice(mib), "fake device")
	if err := p.Put(0x1234); err == nil || !strings.Contains(err.Error(), "did not hand out") && !strings.Contains(err.Error(), "not a block") {
		t.Errorf("Put of an unknown pointer: %v", err)
	}
	a, _ := p.Get(10)
	if err := p.Put(a); err != nil {
		t.Fatal(err)
	}
	if err := p.Put(a); err == nil {
		t.Error("double Put accepted")
	}
}

func TestPoolOutOfMemoryTrimsAndRetries(t *testing.T) {
	dev := newFakeDevice(4 * mib)
	p := newPool(dev, "fake device")
	a, _ := p.Get(2 * mib)
	b, _ := p.Get(2 * mib)
	p.Put(a)
	p.Put(b)
	if s := p.Stats(); s.Cached != 4*mib {
		t.Fatalf("cached %d", s.Cached)
	}
	// 3 MiB rounds to 4 MiB: the device is full of cached 2 MiB blocks.
	c, err := p.Get(3 * mib)
	if err != nil {
		t.Fatalf("Get after trim: %v", err)
	}
	s := p.Stats()
	if s.Trims != 1 || s.Cached != 0 || s.InUse != 4*mib || s.Allocs != 3 || dev.frees != 2 {
		t.Errorf("stats %+v, device frees %d", s, dev.frees)
	}
	if s.PeakReserved != 4*mib {
		t.Errorf("PeakReserved %d", s.PeakReserved)
	}
	// Nothing cached and no room: an error saying so, still out-of-memory.
	_, err = p.Get(1)
	if err == nil {
		t.Fatal("Get beyond capacity succeeded")
	}
	if !IsOutOfMemory(err) {
		t.Errorf("IsOutOfMemory(%v) = false", err)
	}
	for _, want := range []string{"fake device", "4.0 MiB in use", "0 B cached", "0 B free of 4.0 MiB", "CUDA_ERROR_OUT_OF_MEMORY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if s := p.Stats(); s.Trims != 1 {
		t.Errorf("trimmed with nothing cached: %+v", s)
	}
	p.Put(c)
}

func TestPoolTrimAndClose(t *testing.T) {
	dev := newFakeDevice(64 * mib)
	p := newPool(dev, "fake device")
	a, _ := p.Get(100)
	b, _ := p.Get(5 * mib)
	p.Put(a)
	if err := p.Trim(); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Cached != 0 || s.InUse != 6*mib || dev.used != 6*mib {
		t.Errorf("after Trim: %+v, device %d", s, dev.used)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if dev.used != 0 || len(dev.blocks) != 0 {
		t.Errorf("Close left %d bytes on the device", dev.used)
	}
	if _, err := p.Get(1); err == nil {
		t.Error("Get after Close succeeded")
	}
	if err := p.Put(b); err == nil {
		t.Error("Put after Close succeeded")
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestPoolBackingErrorsPassThrough(t *testing.T) {
	p := newPool(failing{}, "fake device")
	_, err := p.Get(10)
	if err == nil || !errors.Is(err, errBroken) || IsOutOfMemory(err) {
		t.Errorf("got %v", err)
	}
}

var errBroken = errors.New("broken device")

type failing struct{}

func (failing) alloc(int64) (DevicePtr, error) { return 0, errBroken }
func (failing) free(DevicePtr) error           { return errBroken }
func (failing) memInfo() (int64, int64, error) { return 0, 0, errBroken }

func TestPoolConcurrent(t *testing.T) {
	dev := newFakeDevice(1 << 40)
	p := newPool(dev, "fake device")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				ptr, err := p.Get(int64((g*7 + i) % 3000))
				if err != nil {
					t.Error(err)
					return
				}
				if err := p.Put(ptr); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s := p.Stats()
	if s.InUse != 0 || s.Gets != 1600 || s.Hits+s.Allocs != 1600 || s.Cached != dev.used {
		t.Errorf("stats %+v, device %d", s, dev.used)
	}
}
