package compute

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestParallelFor(t *testing.T) {
	for _, th := range []int{1, 2, 3, 8} {
		for _, parts := range []int{0, 1, 2, 5, 64} {
			var hits [64]atomic.Int32
			parallelFor(parts, th, func(p int) { hits[p].Add(1) })
			for p := range hits {
				want := int32(0)
				if p < parts {
					want = 1
				}
				if got := hits[p].Load(); got != want {
					t.Fatalf("threads %d parts %d: part %d ran %d times", th, parts, p, got)
				}
			}
		}
	}
}

// TestParallelForSaturated runs many parallel loops from more goroutines
// than there are workers: callers whose help tokens are not picked up must
// finish the work themselves instead of waiting.
func TestParallelForSaturated(t *testing.T) {
	var wg sync.WaitGroup
	var total atomic.Int64
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := 0; it < 50; it++ {
				parallelFor(4, 4, func(p int) { total.Add(1) })
			}
		}()
	}
	wg.Wait()
	if got := total.Load(); got != 16*50*4 {
		t.Fatalf("ran %d parts, want %d", got, 16*50*4)
	}
}

// TestNoGoroutineLeak checks that raising the thread count starts workers
// and lowering it again stops the surplus ones.
func TestNoGoroutineLeak(t *testing.T) {
	prev := SetThreads(1)
	defer SetThreads(prev)
	settle := func(want int) int {
		deadline := time.Now().Add(2 * time.Second)
		n := runtime.NumGoroutine()
		for n != want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			n = runtime.NumGoroutine()
		}
		return n
	}
	time.Sleep(10 * time.Millisecond) // let exit tokens from SetThreads(1) land
	base := runtime.NumGoroutine()
	SetThreads(6)
	parallelFor(12, 6, func(int) {})
	if n := runtime.NumGoroutine(); n != base+5 {
		t.Fatalf("%d goroutines with 6 threads, want %d", n, base+5)
	}
	SetThreads(1)
	if n := settle(base); n != base {
		t.Fatalf("%d goroutines after SetThreads(1), want %d", n, base)
	}
}

// BenchmarkFork compares the long-lived worker pool with a go statement per
// helper on mid-size products, where the fork/join cost is visible.
func BenchmarkFork(b *testing.B) {
	for _, size := range []int{64, 96, 128, 192} {
		for _, spawn := range []bool{false, true} {
			name := "pool"
			if spawn {
				name = "spawn"
			}
			b.Run(fmt.Sprintf("%s/%d", name, size), func(b *testing.B) {
				useSpawn.Store(spawn)
				defer useSpawn.Store(false)
				withThreads(2, func() { benchGemm(b, NoTrans, NoTrans, size, size, size, false) })
			})
		}
	}
}

// BenchmarkForkEmpty is the bare fork/join cost of parallelFor with two
// threads and trivial parts.
func BenchmarkForkEmpty(b *testing.B) {
	var sink atomic.Int64
	for i := 0; i < b.N; i++ {
		parallelFor(2, 2, func(p int) { sink.Add(1) })
	}
}

// BenchmarkForkBusy forks two parts of ~20µs of work each: ~20µs per call
// if the helper starts at once, ~40µs if the caller ends up doing both.
func BenchmarkForkBusy(b *testing.B) {
	busy := func() {
		t := time.Now()
		for time.Since(t) < 20*time.Microsecond {
		}
	}
	for i := 0; i < b.N; i++ {
		parallelFor(2, 2, func(p int) { busy() })
	}
}
