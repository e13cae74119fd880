package fed

import (
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/fed/fedpb"
)

// FuzzDecodeUpdate feeds arbitrary decrypted payloads to the coordinator's
// decoder: it must refuse or return an adapter of the global's exact shape,
// never panic.
func FuzzDecodeUpdate(f *testing.F) {
	global := testSet(f, 8)
	local := global.Clone()
	for _, p := range local.Params() {
		for i := range p.Data {
			p.Data[i] += 0.01 * float32(i%5)
		}
	}
	for _, bits := range []int{4, 8, 32} {
		payload, err := EncodeUpdate(global, local, 3, "alice", 2, bits, rand.New(rand.NewPCG(1, 1)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(payload, uint8(bits))
		if len(payload) > 100 {
			f.Add(payload[:len(payload)/2], uint8(bits))
		}
	}
	f.Add([]byte("junk"), uint8(8))
	f.Fuzz(func(t *testing.T, payload []byte, bits uint8) {
		set, err := DecodeUpdate(payload, global, 3, "alice", 2, int(bits))
		if err != nil {
			return
		}
		if err := global.SameShape(set); err != nil {
			t.Fatalf("accepted an update of another shape: %v", err)
		}
		if err := set.CheckFinite(); err != nil {
			t.Fatalf("accepted a non-finite update: %v", err)
		}
	})
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
