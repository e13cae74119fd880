package secagg

import (
	"encoding"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// seededReader returns a reproducible randomness source for a test client.
func seededReader(seed uint64, id uint32) *rand.ChaCha8 {
	var k [32]byte
	for i := 0; i < 8; i++ {
		k[i] = byte(seed >> (8 * i))
	}
	k[8], k[9], k[10], k[11] = byte(id), byte(id>>8), byte(id>>16), byte(id>>24)
	return rand.NewChaCha8(k)
}

// scenario says who drops out when. Clients not listed take part in every
// round.
type scenario struct {
	neverAdvertise   []uint32 // silent from the start
	dropBeforeShare  []uint32 // advertise keys, then vanish
	dropBeforeMasked []uint32 // share keys, then vanish (the server lists them as dropped)
	dropBeforeUnmask []uint32 // send masked input, then never answer round 4 (still in the sum)
	marshal          bool     // send every message through its binary encoding
	tamper           func(to uint32, b *ShareBundle)
}

// roundStats records what a round cost.
type roundStats struct {
	clientTime time.Duration // all clients together
	serverTime time.Duration
	sent       map[uint32]int // bytes each client sent, all rounds
	survivors  []uint32
}

type binaryMsg interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// relay round-trips a message through its encoding when asked and counts
// the bytes. The decoded copy replaces the original, so what the receiver
// sees is exactly what would have crossed the wire.
func relay[T any, P interface {
	*T
	binaryMsg
}](tb testing.TB, marshal bool, msg P, count *int) P {
	tb.Helper()
	b, err := msg.MarshalBinary()
	if err != nil {
		tb.Fatalf("marshal %T: %v", msg, err)
	}
	if count != nil {
		*count += len(b)
	}
	if !marshal {
		return msg
	}
	out := P(new(T))
	if err := out.UnmarshalBinary(b); err != nil {
		tb.Fatalf("unmarshal %T: %v", msg, err)
	}
	return out
}

func member(ids []uint32, id uint32) bool { return slices.Contains(ids, id) }

// runRound drives one complete round in-process: n clients with the given
// inputs (indexed by id−1) and a server. It returns the unmasked sum, or the
// first error a server step reports; client errors fail the test.
func runRound(tb testing.TB, cfg Config, inputs [][]uint64, sc scenario, seed uint64) ([]uint64, *roundStats, error) {
	tb.Helper()
	return runRoundFunc(tb, cfg, func(id uint32) []uint64 { return inputs[id-1] }, sc, seed)
}

// runRoundFunc is runRound with inputs produced on demand, so benchmarks
// with many clients need not hold every vector at once.
func runRoundFunc(tb testing.TB, cfg Config, input func(id uint32) []uint64, sc scenario, seed uint64) ([]uint64, *roundStats, error) {
	tb.Helper()
	st := &roundStats{sent: map[uint32]int{}}
	srv, err := NewServer(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	cfg = srv.Config()
	clients := map[uint32]*Client{}
	timeClient := func(f func()) {
		t0 := time.Now()
		f()
		st.clientTime += time.Since(t0)
	}
	timeServer := func(f func() error) error {
		t0 := time.Now()
		err := f()
		st.serverTime += time.Since(t0)
		return err
	}
	for id := uint32(1); id <= uint32(cfg.N); id++ {
		if member(sc.neverAdvertise, id) {
			continue
		}
		var ak *AdvertiseKeys
		timeClient(func() {
			c, err := NewClient(cfg, id, seededReader(seed, id))
			if err != nil {
				tb.Fatal(err)
			}
			clients[id] = c
			ak, err = c.AdvertiseKeys()
			if err != nil {
				tb.Fatal(err)
			}
		})
		n := st.sent[id]
		ak = relay(tb, sc.marshal, ak, &n)
		st.sent[id] = n
		if err := timeServer(func() error { return srv.AddKeys(ak) }); err != nil {
			tb.Fatal(err)
		}
	}
	var kbs map[uint32]*KeyBundle
	if err := timeServer(func() (err error) { kbs, err = srv.KeyBundles(); return }); err != nil {
		return nil, st, err
	}
	for _, id := range sortedIDs(kbs) {
		if member(sc.dropBeforeShare, id) {
			continue
		}
		kb := relay(tb, sc.marshal, kbs[id], nil)
		var sk *ShareKeys
		timeClient(func() {
			var err error
			sk, err = clients[id].ShareKeys(kb)
			if err != nil {
				tb.Fatal(err)
			}
		})
		n := st.sent[id]
		sk = relay(tb, sc.marshal, sk, &n)
		st.sent[id] = n
		if err := timeServer(func() error { return srv.AddShares(sk) }); err != nil {
			tb.Fatal(err)
		}
	}
	var sbs map[uint32]*ShareBundle
	if err := timeServer(func() (err error) { sbs, err = srv.ShareBundles(); return }); err != nil {
		return nil, st, err
	}
	for _, id := range sortedIDs(sbs) {
		if member(sc.dropBeforeMasked, id) {
			continue
		}
		sb := relay(tb, sc.marshal, sbs[id], nil)
		if sc.tamper != nil {
			sc.tamper(id, sb)
		}
		var mi *MaskedInput
		var cerr error
		x := input(id)
		timeClient(func() { mi, cerr = clients[id].MaskedInput(sb, x) })
		if cerr != nil {
			return nil, st, cerr
		}
		n := st.sent[id]
		mi = relay(tb, sc.marshal, mi, &n)
		st.sent[id] = n
		if err := timeServer(func() error { return srv.AddMaskedInput(mi) }); err != nil {
			tb.Fatal(err)
		}
	}
	var req *UnmaskRequest
	if err := timeServer(func() (err error) { req, err = srv.UnmaskRequest(); return }); err != nil {
		return nil, st, err
	}
	st.survivors = req.Survivors
	for _, id := range req.Survivors {
		if member(sc.dropBeforeUnmask, id) {
			continue
		}
		r := relay(tb, sc.marshal, req, nil)
		var resp *UnmaskResponse
		timeClient(func() {
			var err error
			resp, err = clients[id].Unmask(r)
			if err != nil {
				tb.Fatal(err)
			}
		})
		n := st.sent[id]
		resp = relay(tb, sc.marshal, resp, &n)
		st.sent[id] = n
		if err := timeServer(func() error { return srv.AddUnmask(resp) }); err != nil {
			tb.Fatal(err)
		}
	}
	var sum []uint64
	err = timeServer(func() (err error) { sum, err = srv.Result(); return })
	return sum, st, err
}

// plainSum is the reference: Σ_{i ∈ ids} inputs[i−1] mod 2^m.
func plainSum(inputs [][]uint64, ids []uint32, m int) []uint64 {
	mask := ^uint64(0)
	if m < 64 {
		mask = 1<<m - 1
	}
	sum := make([]uint64, len(inputs[0]))
	for _, id := range ids {
		for j, v := range inputs[id-1] {
			sum[j] += v
		}
	}
	for j := range sum {
		sum[j] &= mask
	}
	return sum
}

// randomInputs returns n encoded random vectors with random weights 1..3,
// and a configuration whose TotalWeight is their sum.
func randomInputs(tb testing.TB, cfg Config, seed uint64) (Config, [][]uint64) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	weights := make([]uint64, cfg.N)
	var total uint64
	for i := range weights {
		weights[i] = 1 + rng.Uint64N(3)
		total += weights[i]
	}
	cfg.TotalWeight = total
	inputs := make([][]uint64, cfg.N)
	x := make([]float32, cfg.Length)
	for i := range inputs {
		for j := range x {
			x[j] = float32(rng.Float64()*2 - 1)
		}
		enc, err := Encode(x, 1, cfg.Bits, weights[i], rand.New(rand.NewPCG(seed, uint64(i))))
		if err != nil {
			tb.Fatal(err)
		}
		inputs[i] = enc
	}
	return cfg, inputs
}

func idsExcept(n int, drop ...[]uint32) []uint32 {
	var out []uint32
	for id := uint32(1); id <= uint32(n); id++ {
		gone := false
		for _, d := range drop {
			gone = gone || member(d, id)
		}
		if !gone {
			out = append(out, id)
		}
	}
	return out
}

func sumsEqual(tb testing.TB, got, want []uint64) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("sum has %d values, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			tb.Fatalf("sum[%d] = %d, want %d (first difference)", i, got[i], want[i])
		}
	}
}

func ids(v ...uint32) []uint32 { return v }

func (s scenario) String() string {
	return fmt.Sprintf("never=%v beforeShare=%v beforeMasked=%v beforeUnmask=%v", s.neverAdvertise, s.dropBeforeShare, s.dropBeforeMasked, s.dropBeforeUnmask)
}
