package compute

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The worker pool. A parallel call cuts its work into parts (disjoint blocks
// of C), posts up to threads-1 "help" tokens to long-lived workers and then
// works through the parts itself; every participant claims the next part with
// an atomic counter. If the workers are busy with another caller's product
// the tokens wait in the queue and the caller simply does more parts itself,
// so concurrent Gemm calls never deadlock and never run more than Threads()
// goroutines of math per call. A token that reaches a worker after its job is
// finished finds no part left and is dropped.
//
// Waking a parked goroutine on another core costs tens of microseconds in a
// VM (futex wake-up of an idle OS thread), about the time a 128³ product
// takes, so a worker that finishes spins for workerSpin waiting for the next
// token before it parks, and a caller spins for its helpers' parts before it
// blocks. Back-to-back GEMMs (a training step) then fork and join in about a
// microsecond; an idle pool costs nothing after workerSpin. Measured with
// BenchmarkFork (pool_test.go) on the 2-core Zen 3 VM, two threads: 128³
// takes 40 µs with the spinning pool and 60–70 µs with a go statement per
// helper (slower than one thread), 192³ 112 µs against 190 µs. Without the
// spinning the pool was no faster than go statements; the spinning is only
// possible with long-lived workers.

var (
	threadsMu  sync.Mutex
	numThreads atomic.Int64
	numWorkers int         // workers started and not told to exit; guarded by threadsMu
	tokens     chan *job   // help requests; nil job = exit
	useSpawn   atomic.Bool // benchmark switch: go statement per part instead of workers
)

func init() {
	tokens = make(chan *job, 256)
	numThreads.Store(int64(runtime.GOMAXPROCS(0)))
}

// Threads returns the number of goroutines a large GEMM is spread over.
func Threads() int { return int(numThreads.Load()) }

// SetThreads sets the number of goroutines large GEMMs use (n < 1 means
// runtime.GOMAXPROCS(0)) and returns the previous setting. Idle workers above
// the new count exit.
func SetThreads(n int) (previous int) {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	threadsMu.Lock()
	defer threadsMu.Unlock()
	previous = int(numThreads.Swap(int64(n)))
	for numWorkers > n-1 {
		numWorkers--
		tokens <- nil
	}
	return previous
}

// ensureWorkers starts workers until threads-1 of them exist.
func ensureWorkers(threads int) {
	threadsMu.Lock()
	for numWorkers < threads-1 {
		numWorkers++
		go worker()
	}
	threadsMu.Unlock()
}

// workerSpin is how long an idle worker polls for new work before parking;
// callerSpin how long a caller polls for its helpers before blocking.
const (
	workerSpin = 200 * time.Microsecond
	callerSpin = 2 * time.Millisecond
)

func worker() {
	for {
		j, ok := pollToken()
		if !ok {
			j = <-tokens
		}
		if j == nil {
			return
		}
		j.work()
	}
}

// pollToken spins up to workerSpin for a token.
func pollToken() (*job, bool) {
	start := time.Now()
	for i := 0; ; i++ {
		select {
		case j := <-tokens:
			return j, true
		default:
		}
		if i%16 == 15 {
			if time.Since(start) > workerSpin {
				return nil, false
			}
			runtime.Gosched()
		}
	}
}

type job struct {
	parts   int
	next    atomic.Int64 // next part to claim
	pending atomic.Int64 // parts not finished
	wg      sync.WaitGroup
	fn      func(part int)
}

// work claims and runs parts until none is left.
func (j *job) work() {
	for {
		p := int(j.next.Add(1) - 1)
		if p >= j.parts {
			return
		}
		j.fn(p)
		j.pending.Add(-1)
		j.wg.Done()
	}
}

// wait returns when every part has finished: it spins for up to callerSpin
// (helpers usually finish within microseconds of the caller) and then
// blocks.
func (j *job) wait() {
	start := time.Now()
	for i := 0; j.pending.Load() != 0; i++ {
		if i%16 == 15 {
			if time.Since(start) > callerSpin {
				break
			}
			runtime.Gosched()
		}
	}
	j.wg.Wait()
}

// parallelFor runs fn(0..parts-1), each exactly once, on up to threads
// goroutines (the caller's included), and returns when all have finished.
func parallelFor(parts, threads int, fn func(part int)) {
	if parts <= 0 {
		return
	}
	helpers := min(threads, parts) - 1
	if helpers <= 0 {
		for p := 0; p < parts; p++ {
			fn(p)
		}
		return
	}
	if useSpawn.Load() {
		spawnFor(parts, helpers, fn)
		return
	}
	ensureWorkers(threads)
	j := &job{parts: parts, fn: fn}
	j.pending.Store(int64(parts))
	j.wg.Add(parts)
post:
	for h := 0; h < helpers; h++ {
		select {
		case tokens <- j:
		default:
			// Queue full: the pool is saturated by other callers.
			break post
		}
	}
	j.work()
	j.wait()
}

// spawnFor is the alternative to the pool, kept for the benchmark that
// justifies the pool: one new goroutine per helper.
func spawnFor(parts, helpers int, fn func(part int)) {
	j := &job{parts: parts, fn: fn}
	j.wg.Add(parts)
	for h := 0; h < helpers; h++ {
		go j.work()
	}
	j.work()
	j.wg.Wait()
}
