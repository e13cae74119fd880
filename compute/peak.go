package compute

import (
	"fmt"
	"runtime"
	"time"
)

// MeasureFMAPeak measures one core's single-precision FMA throughput at a
// vector width, "ymm" (AVX2, 256-bit), "zmm" (AVX-512, 512-bit) or "bf16"
// (AVX512_BF16 VDPBF16PS on zmm: bf16 pairs into fp32 lanes), in
// GFLOP/s (an FMA is 2 flops): twelve independent accumulators in a tight
// loop, run for at least minTime on a locked OS thread. It is the ceiling
// kernels of that width can approach — the denominator `client bench
// kernels` reports fractions against. A width this CPU (or OS) cannot run is
// an error naming it.
func MeasureFMAPeak(width string, minTime time.Duration) (float64, error) {
	if width != "ymm" && width != "zmm" && width != "bf16" {
		return 0, fmt.Errorf("fma peak: width %q, want ymm, zmm or bf16", width)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	iters := 1 << 16
	lanes, ok := fmaLoop(width, iters) // warm-up; frequency settles
	if !ok {
		return 0, fmt.Errorf("fma peak: this CPU or OS cannot run %s FMAs (AVX2+FMA for ymm, AVX-512F with ZMM state for zmm, AVX512_BF16 for bf16)", width)
	}
	var best float64
	for deadline := time.Now().Add(minTime); ; {
		start := time.Now()
		fmaLoop(width, iters)
		el := time.Since(start)
		if el < 20*time.Millisecond {
			iters *= 2
			continue
		}
		best = max(best, float64(iters)*12*float64(lanes)*2/el.Seconds()/1e9)
		if time.Now().After(deadline) {
			return best, nil
		}
	}
}
