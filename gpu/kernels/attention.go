package kernels

import (
	"fmt"
	"math"
)

// MaxHeadDim is the largest attention head dimension the kernels support.
const MaxHeadDim = 256

// AttentionShape describes one attention call, as model's attentionShape: B
// sequences of T tokens, H query heads sharing KV key/value heads in groups
// of H/KV, head dim HD; q and out are (B·T)×(H·HD), k and v (B·T)×(KV·HD).
type AttentionShape struct {
	B, T, H, KV, HD int
	Causal          bool
	Window          int // sliding window: query i sees keys j with i−j < Window; 0 = unlimited
}

// Validate checks the shape against what the kernels support.
func (s AttentionShape) Validate() error {
	if err := checkSizes("attention", size{"B", s.B}, size{"T", s.T}, size{"H", s.H}, size{"KV", s.KV}, size{"HD", s.HD}); err != nil {
		return err
	}
	switch {
	case s.H%s.KV != 0:
		return fmt.Errorf("kernels: attention: %d heads do not group over %d key/value heads", s.H, s.KV)
	case s.HD%2 != 0 || s.HD > MaxHeadDim:
		return fmt.Errorf("kernels: attention: head dim %d, want an even value up to %d", s.HD, MaxHeadDim)
	case s.Window < 0 || s.Window > math.MaxInt32:
		return fmt.Errorf("kernels: attention: window %d, want ≥ 0 (0 = none)", s.Window)
	case s.B*s.H > maxGridY:
		return fmt.Errorf("kernels: attention: B·H = %d exceeds the grid's %d", s.B*s.H, maxGridY)
	}
	// Element counts and dropout-bit indices ((b·H+h)·T+i)·T+j are long long.
	if _, err := product("attention", size{"B", s.B}, size{"T", s.T}, size{"H", s.H}, size{"HD", s.HD}); err != nil {
		return err
	}
	if _, err := product("attention", size{"B", s.B}, size{"H", s.H}, size{"T", s.T}, size{"T", s.T}); err != nil {
		return err
	}
	return checkSizes("attention", size{"H·HD", s.H * s.HD})
}

// attnTile is one instantiation of the attention kernels (attention.cu's
// extern "C" entries _d32 … _d256): its head-dim bound and, for each kernel,
// the tile's rows and columns and the threads per block. These numbers must
// match the template arguments in attention.cu (the device tests check the
// results for every configuration).
type attnTile struct {
	maxHD               int
	fwdBR, fwdBC, fwdNT int    // forward: query rows, key columns, threads
	dqBR, dqBC, dqNT    int    // dq: query rows, key columns, threads
	dkvBC, dkvBR, dkvNT int    // dk/dv: key rows, query columns, threads
	fwd, dq, dkdv       string // entry names
}

var attnTiles = []attnTile{
	{32, 64, 64, 128, 64, 32, 128, 64, 32, 128, "attention_forward_d32", "attention_backward_dq_d32", "attention_backward_dkdv_d32"},
	{64, 64, 32, 128, 32, 32, 128, 32, 32, 128, "attention_forward_d64", "attention_backward_dq_d64", "attention_backward_dkdv_d64"},
	{128, 32, 32, 128, 16, 16, 128, 16, 16, 128, "attention_forward_d128", "attention_backward_dq_d128", "attention_backward_dkdv_d128"},
	{256, 16, 16, 128, 8, 8, 64, 8, 8, 64, "attention_forward_d256", "attention_backward_dq_d256", "attention_backward_dkdv_d256"},
}

// tileFor picks the smallest instantiation whose bound covers hd.
func tileFor(hd int) attnTile {
	for _, t := range attnTiles {
		if hd <= t.maxHD {
			return t
		}
	}
	return attnTiles[len(attnTiles)-1]
}

// Dynamic shared memory (bytes) of each kernel; rows are padded to HD+1
// floats. All stay under the 48 KiB a launch gets without opting in.
func (t attnTile) fwdShared(hd int) int {
	return 4 * ((t.fwdBR+t.fwdBC)*(hd+1) + t.fwdBR*(t.fwdBC+1))
}

func (t attnTile) dqShared(hd int) int {
	return 4 * (2*(t.dqBR+t.dqBC)*(hd+1) + t.dqBR*(t.dqBC+1))
}

func (t attnTile) dkdvShared(hd int) int {
	return 4 * (2*(t.dkvBC+t.dkvBR)*(hd+1) + 2*t.dkvBC*(t.dkvBR+1) + 3*t.dkvBR)
}

// attnTail is the argument list every attention kernel ends with.
func attnTail(s AttentionShape, keyMask, dropKeep uintptr, dropScale float32) []any {
	causal := int32(0)
	if s.Causal {
		causal = 1
	}
	scale := float32(1 / math.Sqrt(float64(s.HD))) // as attentionProbs computes it
	return []any{keyMask, dropKeep, dropScale, scale,
		int32(s.B), int32(s.T), int32(s.H), int32(s.KV), int32(s.HD), causal, int32(s.Window)}
}

func checkDrop(entry string, dropKeep uintptr, dropScale float32) error {
	if err := checkFinite(entry, namedFloat{"dropScale", dropScale}); err != nil {
		return err
	}
	if dropKeep != 0 && !(dropScale > 0) {
		return fmt.Errorf("kernels: %s: dropout scale %v with a mask, want > 0 (1/(1−p))", entry, dropScale)
	}
	return nil
}

// AttentionForward computes softmax(q·kᵀ/√HD + mask)·v per sequence and
// head without materializing the probabilities (attentionForward):
//
//	q, out: (B·T)×(H·HD); k, v: (B·T)×(KV·HD); head h reads KV head h/(H/KV)
//	stats: (B·H·T)×2, each query row's max score and 1/Σexp, for the
//	  backward (−Inf, 0 for a row whose keys are all masked, whose output
//	  is 0); may be 0 when no backward follows
//	keyMask: B×T floats, 1 real / 0 padding key, or 0 for none
//	dropKeep: attention-dropout keep bits indexed ((b·H+h)·T+i)·T+j, or 0;
//	  kept probabilities are multiplied by dropScale
//
// Causal and Window mask as attentionShape.allowed does.
func AttentionForward(l Launcher, out, stats, q, k, v, keyMask, dropKeep uintptr, dropScale float32, s AttentionShape) error {
	if err := s.Validate(); err != nil {
		return err
	}
	t := tileFor(s.HD)
	if err := checkPtrs(t.fwd, ptr{"out", out}, ptr{"q", q}, ptr{"k", k}, ptr{"v", v}); err != nil {
		return err
	}
	if err := checkDrop(t.fwd, dropKeep, dropScale); err != nil {
		return err
	}
	grid := [3]uint32{uint32((s.T + t.fwdBR - 1) / t.fwdBR), uint32(s.B * s.H), 1}
	args := append([]any{out, stats, q, k, v}, attnTail(s, keyMask, dropKeep, dropScale)...)
	return l.Launch(t.fwd, grid, [3]uint32{uint32(t.fwdNT), 1, 1}, uint32(t.fwdShared(s.HD)), args...)
}

// AttentionBackward accumulates (+=) ∂L/∂q into dq, ∂L/∂k into dk and ∂L/∂v
// into dv given dout, like attentionBackward, rebuilding the probabilities
// from the forward's stats. Shapes as AttentionForward: dq, dout, out:
// (B·T)×(H·HD); dk, dv: (B·T)×(KV·HD); stats: (B·H·T)×2; scratchD: B·H·T
// floats of scratch (receives rowsum(dout⊙out)). out, stats, keyMask,
// dropKeep and dropScale must be the forward's. Three launches: the row
// sums, dq per query tile, dk/dv per key tile (no atomics).
func AttentionBackward(l Launcher, dq, dk, dv, dout, out, stats, scratchD, q, k, v, keyMask, dropKeep uintptr, dropScale float32, s AttentionShape) error {
	if err := s.Validate(); err != nil {
		return err
	}
	t := tileFor(s.HD)
	const dot = "attention_backward_dot"
	if err := checkPtrs(t.dq, ptr{"dq", dq}, ptr{"dk", dk}, ptr{"dv", dv}, ptr{"dout", dout}, ptr{"out", out},
		ptr{"stats", stats}, ptr{"scratchD", scratchD}, ptr{"q", q}, ptr{"k", k}, ptr{"v", v}); err != nil {
		return err
	}
	if err := checkDrop(t.dq, dropKeep, dropScale); err != nil {
		return err
	}
	rows := int64(s.B) * int64(s.T) * int64(s.H)
	g := min((rows+7)/8, maxElemGrid)
	if err := l.Launch(dot, [3]uint32{uint32(g), 1, 1}, [3]uint32{256, 1, 1}, 0,
		scratchD, dout, out, int32(s.B), int32(s.T), int32(s.H), int32(s.HD)); err != nil {
		return err
	}
	tail := attnTail(s, keyMask, dropKeep, dropScale)
	grid := [3]uint32{uint32((s.T + t.dqBR - 1) / t.dqBR), uint32(s.B * s.H), 1}
	args := append([]any{dq, dout, stats, scratchD, q, k, v}, tail...)
	if err := l.Launch(t.dq, grid, [3]uint32{uint32(t.dqNT), 1, 1}, uint32(t.dqShared(s.HD)), args...); err != nil {
		return err
	}
	grid = [3]uint32{uint32((s.T + t.dkvBC - 1) / t.dkvBC), uint32(s.B * s.KV), 1}
	args = append([]any{dk, dv, dout, stats, scratchD, q, k, v}, tail...)
	return l.Launch(t.dkdv, grid, [3]uint32{uint32(t.dkvNT), 1, 1}, uint32(t.dkdvShared(s.HD)), args...)
}
