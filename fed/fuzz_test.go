package fed

import (
	"math/rand/v2"
	"testing"

	"github.com/kronfed/kronfed/adapter"

	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/fed/fedpb"
)

// FuzzDecodeUpdate feeds arbitrary decrypted payloads to the coordinator's
// decoder: it must refuse or return a change of the global's exact shape
// (or, for rule hetero-exact, an adapter of the global's kind and layers),
// never panic.
func FuzzDecodeUpdate(f *testing.F) {
	global := testSet(f, 8)
	local := global.Clone()
	for _, p := range local.Params() {
		for i := range p.Data {
			p.Data[i] += 0.01 * float32(i%5)
		}
	}
	own := shapedSet(f, global, 2, 2)
	for _, bits := range []int{4, 8, 32} {
		payload, err := EncodeUpdate(global, local, 3, "alice", 2, bits, rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(payload, uint8(bits), false)
		if len(payload) > 100 {
			f.Add(payload[:len(payload)/2], uint8(bits), false)
		}
		whole, err := EncodeWhole(global, own, 3, "alice", 2, bits, rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(whole, uint8(bits), true)
		f.Add(whole, uint8(bits), false)
	}
	f.Add([]byte("junk"), uint8(8), true)
	f.Fuzz(func(t *testing.T, payload []byte, bits uint8, whole bool) {
		set, err := DecodeUpdate(payload, global, 3, "alice", 2, int(bits), whole)
		if err != nil {
			return
		}
		if whole {
			if err := sameLayers(global, set); err != nil {
				t.Fatalf("accepted an adapter of other layers: %v", err)
			}
		} else if err := global.SameShape(set); err != nil {
			t.Fatalf("accepted an update of another shape: %v", err)
		}
		if err := set.CheckFinite(); err != nil {
			t.Fatalf("accepted a non-finite update: %v", err)
		}
	})
}

// shapedSet is an adapter on global's layers with its own rank and dA2,
// random factors.
func shapedSet(t testing.TB, global *adapter.Set, rank, dA2 int) *adapter.Set {
	t.Helper()
	cfg := global.Config
	cfg.Rank, cfg.DA2 = rank, dA2
	var targets []adapter.Target
	for _, m := range global.Modules {
		dOut, dIn := m.Layer.Dims()
		targets = append(targets, adapter.Target{Name: m.Name, DOut: dOut, DIn: dIn})
	}
	rng := rand.New(rand.NewPCG(7, 7))
	set, err := adapter.NewSet(cfg, global.BaseModel, targets, rng)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range set.Params() {
		for i := range p.Data {
			p.Data[i] = float32(rng.NormFloat64() * 0.1)
		}
	}
	for _, d := range global.Dense {
		d.Data, d.Grad = append([]float32(nil), d.Data...), make([]float32, len(d.Data))
		set.Dense = append(set.Dense, d)
	}
	return set
}

// FuzzCheckUpload feeds arbitrary upload headers (as they arrive off the
// network) to the coordinator's state machine: refusals only, no panics, and
// nothing accepted that breaks the machine's invariants.
func FuzzCheckUpload(f *testing.F) {
	seed := &fedpb.UploadHeader{Round: 1, Client: "a", BaseVersion: 1, Examples: 5, Size: 10,
		Digest: make([]byte, 32), Nonce: make([]byte, NonceSize)}
	b, _ := proto.Marshal(seed)
	f.Add(b, "a")
	f.Add([]byte{0xff, 0x01}, "b")
	f.Fuzz(func(t *testing.T, data []byte, caller string) {
		var h fedpb.UploadHeader
		if proto.Unmarshal(data, &h) != nil {
			return
		}
		m, err := NewCoordinatorMachine(testPolicy(), State{GlobalVersion: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"a", "b", "c"} {
			m.Join(t0, c, 1, "")
		}
		m.Tick(t0)
		dup, ref := m.CheckUpload(t0, caller, &h)
		if dup {
			t.Fatal("a fresh round reported a duplicate")
		}
		if ref == nil {
			m.Accept(t0, Receipt{Client: caller, Examples: h.Examples, Nonce: h.Nonce, Digest: h.Digest})
			b, _ := MarshalState(m.State())
			if _, err := UnmarshalState(b); err != nil {
				t.Fatalf("accepted header left an invalid state: %v", err)
			}
		}
	})
}
