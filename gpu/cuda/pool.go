package cuda

import (
	"errors"
	"fmt"
	"math"
	"sync"
)

// backing is what a Pool allocates from: a Context, or a deterministic fake in tests.
type backing interface {
	alloc(bytes int64) (DevicePtr, error)
	free(p DevicePtr) error
	memInfo() (free, total int64, err error)
}

// PoolStats are a Pool's counters. Sizes are rounded sizes in bytes.
type PoolStats struct {
	InUse        int64 // handed out by Get and not yet Put back
	Cached       int64 // held on free lists for reuse
	Peak         int64 // the largest InUse has been
	PeakReserved int64 // the largest InUse+Cached (device memory held) has been
	Gets         int64 // Get calls that succeeded
	Allocs       int64 // device allocations made
	Hits         int64 // Gets served from a free list
	Trims        int64 // times every cached block was freed (Trim, or out of memory)
}

// Pool is a caching device allocator, what PyTorch's is, simply: sizes are
// rounded up (to 512 B multiples up to 1 MiB, then to 2 MiB multiples), a
// block Put back goes on a free list for its rounded size and is handed out
// again by the next Get of that size, and when the device is out of memory
// every cached block is freed and the allocation retried once. cuMemFree
// synchronizes the device and cuMemAlloc may; a warm pool does neither.
//
// Reuse is stream-unaware: Put a block only when no queued work still uses
// it, or when all work is on one stream (then later work is ordered after
// earlier work anyway). Pool methods may be called from several goroutines.
type Pool struct {
	mu     sync.Mutex
	b      backing
	where  string                // "device 0 (NVIDIA H100)", for messages
	free   map[int64][]DevicePtr // rounded size → cached blocks (last in, first out)
	live   map[DevicePtr]int64   // handed-out block → rounded size
	stats  PoolStats
	closed bool
}

// NewPool returns an empty pool over c's memory.
func NewPool(c *Context) *Pool { return newPool(c, c.dev.where()) }

func newPool(b backing, where string) *Pool {
	return &Pool{b: b, where: where, free: make(map[int64][]DevicePtr), live: make(map[DevicePtr]int64)}
}

const (
	poolSmallStep = 512
	poolSmallMax  = 1 << 20
	poolLargeStep = 2 << 20
)

// roundSize is the block size a request of bytes gets. A zero-byte request
// gets the smallest block, so that every Get returns a distinct pointer.
func roundSize(bytes int64) (int64, error) {
	if bytes < 0 {
		return 0, fmt.Errorf("gpu: pool: negative size %d", bytes)
	}
	if bytes > math.MaxInt64-poolLargeStep {
		return 0, fmt.Errorf("gpu: pool: size %d too large", bytes)
	}
	if bytes <= poolSmallMax {
		return max(1, (bytes+poolSmallStep-1)/poolSmallStep) * poolSmallStep, nil
	}
	return (bytes + poolLargeStep - 1) / poolLargeStep * poolLargeStep, nil
}

// Get returns a block of at least bytes, from the cache when one of its
// rounded size is free, else newly allocated.
func (p *Pool) Get(bytes int64) (DevicePtr, error) {
	size, err := roundSize(bytes)
	if err != nil {
		return 0, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, errors.New("gpu: pool: Get after Close")
	}
	if list := p.free[size]; len(list) > 0 {
		ptr := list[len(list)-1]
		if len(list) == 1 {
			delete(p.free, size)
		} else {
			p.free[size] = list[:len(list)-1]
		}
		p.stats.Cached -= size
		p.stats.Hits++
		p.handOut(ptr, size)
		return ptr, nil
	}
	ptr, err := p.b.alloc(size)
	if err != nil && IsOutOfMemory(err) && p.stats.Cached > 0 {
		// The cache holds memory of other sizes: give it back and retry once.
		if terr := p.trimLocked(); terr != nil {
			return 0, fmt.Errorf("gpu: pool: freeing the cache to make room for %s: %w", FormatBytes(size), terr)
		}
		ptr, err = p.b.alloc(size)
	}
	if err != nil {
		return 0, p.oomError(bytes, size, err)
	}
	p.stats.Allocs++
	p.handOut(ptr, size)
	return ptr, nil
}

func (p *Pool) handOut(ptr DevicePtr, size int64) {
	p.live[ptr] = size
	p.stats.Gets++
	p.stats.InUse += size
	p.stats.Peak = max(p.stats.Peak, p.stats.InUse)
	p.stats.PeakReserved = max(p.stats.PeakReserved, p.stats.InUse+p.stats.Cached)
}

// oomError wraps a failed allocation with what the pool holds and, when the
// device answers, what it has free.
func (p *Pool) oomError(bytes, size int64, err error) error {
	msg := fmt.Sprintf("gpu: pool on %s: get %s (rounded to %s) with %s in use and %s cached",
		p.where, FormatBytes(bytes), FormatBytes(size), FormatBytes(p.stats.InUse), FormatBytes(p.stats.Cached))
	if free, total, merr := p.b.memInfo(); merr == nil {
		msg += fmt.Sprintf("; device has %s free of %s", FormatBytes(free), FormatBytes(total))
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// Put returns a block from Get to the cache. A pointer the pool did not hand
// out, or one already Put back, is an error.
func (p *Pool) Put(ptr DevicePtr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("gpu: pool on %s: Put(%#x) after Close (Close freed it)", p.where, uintptr(ptr))
	}
	size, ok := p.live[ptr]
	if !ok {
		return fmt.Errorf("gpu: pool on %s: Put(%#x): not a block this pool handed out, or already put back", p.where, uintptr(ptr))
	}
	delete(p.live, ptr)
	p.stats.InUse -= size
	p.free[size] = append(p.free[size], ptr)
	p.stats.Cached += size
	return nil
}

// Trim frees every cached block.
func (p *Pool) Trim() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.trimLocked()
}

func (p *Pool) trimLocked() error {
	var errs []error
	for size, list := range p.free {
		for _, ptr := range list {
			if err := p.b.free(ptr); err != nil {
				errs = append(errs, err)
			}
		}
		p.stats.Cached -= size * int64(len(list))
		delete(p.free, size)
	}
	p.stats.Trims++
	return errors.Join(errs...)
}

// Stats is a snapshot of the counters.
func (p *Pool) Stats() PoolStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

// ResetPeak starts Peak and PeakReserved again from what is held now, so
// that the next stretch of work can be measured on its own.
func (p *Pool) ResetPeak() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stats.Peak, p.stats.PeakReserved = p.stats.InUse, p.stats.InUse+p.stats.Cached
}

// Close frees every cached block and every block still handed out (the
// caller must be done with them: synchronize first). Later Gets and Puts
// fail. Closing twice is a no-op.
func (p *Pool) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	errs := []error{p.trimLocked()}
	for ptr, size := range p.live {
		errs = append(errs, p.b.free(ptr))
		p.stats.InUse -= size
	}
	clear(p.live)
	return errors.Join(errs...)
}
