package secagg

import (
	"bytes"
	"encoding"
	"reflect"
	"strings"
	"testing"
)

// sampleMessages runs a small round with the given key agreement and
// returns one encoded message of every type, as the fuzz corpus and the
// round-trip test use them.
func sampleMessages(tb testing.TB, ka KeyAgreement) map[string][]byte {
	tb.Helper()
	cfg, _ := Config{Round: 3, Seed: [32]byte{7}, N: 5, Bits: 4, TotalWeight: 5, Length: 10, KeyAgreement: ka}.Normalize()
	srv, err := NewServer(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string][]byte{}
	enc := func(name string, m encoding.BinaryMarshaler) {
		b, err := m.MarshalBinary()
		if err != nil {
			tb.Fatal(err)
		}
		out[name] = b
	}
	enc("config", cfg)
	clients := map[uint32]*Client{}
	for id := uint32(1); id <= 5; id++ {
		c, _ := NewClient(cfg, id, seededReader(9, id))
		clients[id] = c
		ak, err := c.AdvertiseKeys()
		if err != nil {
			tb.Fatal(err)
		}
		enc("advertise", ak)
		if err := srv.AddKeys(ak); err != nil {
			tb.Fatal(err)
		}
	}
	kbs, _ := srv.KeyBundles()
	enc("keybundle", kbs[1])
	for id, c := range clients {
		sk, err := c.ShareKeys(kbs[id])
		if err != nil {
			tb.Fatal(err)
		}
		enc("sharekeys", sk)
		if err := srv.AddShares(sk); err != nil {
			tb.Fatal(err)
		}
	}
	sbs, _ := srv.ShareBundles()
	enc("sharebundle", sbs[2])
	for id := uint32(1); id <= 4; id++ { // client 5 drops
		mi, err := clients[id].MaskedInput(sbs[id], make([]uint64, 10))
		if err != nil {
			tb.Fatal(err)
		}
		enc("masked", mi)
		if err := srv.AddMaskedInput(mi); err != nil {
			tb.Fatal(err)
		}
	}
	req, _ := srv.UnmaskRequest()
	enc("request", req)
	resp, err := clients[1].Unmask(req)
	if err != nil {
		tb.Fatal(err)
	}
	enc("response", resp)
	return out
}

type codec interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

var decoders = map[string]func() codec{
	"advertise":   func() codec { return new(AdvertiseKeys) },
	"keybundle":   func() codec { return new(KeyBundle) },
	"sharekeys":   func() codec { return new(ShareKeys) },
	"sharebundle": func() codec { return new(ShareBundle) },
	"masked":      func() codec { return new(MaskedInput) },
	"request":     func() codec { return new(UnmaskRequest) },
	"response":    func() codec { return new(UnmaskResponse) },
}

// TestMessagesRoundTrip: every message decodes to a value that re-encodes
// to the same bytes, and every decoder refuses truncation, trailing bytes,
// a foreign tag and a newer version.
func TestMessagesRoundTrip(t *testing.T) {
	for _, ka := range []KeyAgreement{X25519, XWing} {
		msgs := sampleMessages(t, ka)
		for name, newMsg := range decoders {
			b := msgs[name]
			m := newMsg()
			if err := m.UnmarshalBinary(b); err != nil {
				t.Fatalf("%v %s: %v", ka, name, err)
			}
			again, _ := m.MarshalBinary()
			if !bytes.Equal(again, b) {
				t.Fatalf("%v %s: re-encoding differs", ka, name)
			}
			for cut := 0; cut < len(b); cut += 1 + len(b)/50 {
				if err := newMsg().UnmarshalBinary(b[:cut]); err == nil {
					t.Fatalf("%v %s: truncated to %d bytes decodes", ka, name, cut)
				}
			}
			if err := newMsg().UnmarshalBinary(append(b[:len(b):len(b)], 0)); err == nil || !strings.Contains(err.Error(), "trailing") {
				t.Fatalf("%v %s: trailing byte: %v", ka, name, err)
			}
			v := append([]byte(nil), b...)
			v[0] = 2
			if err := newMsg().UnmarshalBinary(v); err == nil || !strings.Contains(err.Error(), "version 2") {
				t.Fatalf("%v %s: version 2: %v", ka, name, err)
			}
			for other, ob := range msgs {
				if other != name && other != "config" && ob[1] != b[1] {
					if err := newMsg().UnmarshalBinary(ob); err == nil {
						t.Fatalf("%v: %s decodes as %s", ka, other, name)
					}
				}
			}
		}
	}
	// Hostile lengths are refused before allocation.
	huge := []byte{wireVersion, tagUnmaskRequest, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff}
	if err := new(UnmaskRequest).UnmarshalBinary(huge); err == nil || !strings.Contains(err.Error(), "cannot fit") {
		t.Fatalf("huge count: %v", err)
	}
	bad := &UnmaskResponse{Round: 1, From: 2, Shares: []RevealedShare{{Owner: 3, Kind: 3}}}
	b, _ := bad.MarshalBinary()
	if err := new(UnmaskResponse).UnmarshalBinary(b); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Fatalf("unknown kind: %v", err)
	}
}

// fuzzDecoder checks the invariant every decoder must keep: no panic, and
// whatever decodes re-encodes to the same bytes.
func fuzzDecoder(f *testing.F, name string) {
	for _, ka := range []KeyAgreement{X25519, XWing} {
		f.Add(sampleMessages(f, ka)[name])
	}
	f.Add([]byte{})
	f.Add([]byte{wireVersion})
	newMsg := decoders[name]
	f.Fuzz(func(t *testing.T, data []byte) {
		m := newMsg()
		if err := m.UnmarshalBinary(data); err != nil {
			return
		}
		again, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("decoded %s re-encodes differently", name)
		}
	})
}

func FuzzAdvertiseKeys(f *testing.F)  { fuzzDecoder(f, "advertise") }
func FuzzKeyBundle(f *testing.F)      { fuzzDecoder(f, "keybundle") }
func FuzzShareKeys(f *testing.F)      { fuzzDecoder(f, "sharekeys") }
func FuzzShareBundle(f *testing.F)    { fuzzDecoder(f, "sharebundle") }
func FuzzMaskedInput(f *testing.F)    { fuzzDecoder(f, "masked") }
func FuzzUnmaskRequest(f *testing.F)  { fuzzDecoder(f, "request") }
func FuzzUnmaskResponse(f *testing.F) { fuzzDecoder(f, "response") }

// FuzzConfig: a decoded configuration is valid and stable under
// re-encoding (decoding fills defaults, so compare decoded values).
func FuzzConfig(f *testing.F) {
	f.Add(sampleMessages(f, X25519)["config"])
	f.Add(sampleMessages(f, XWing)["config"])
	f.Fuzz(func(t *testing.T, data []byte) {
		var c Config
		if err := c.UnmarshalBinary(data); err != nil {
			return
		}
		if _, err := c.Graph(); err != nil {
			t.Fatalf("decoded config has no graph: %v", err)
		}
		b, _ := c.MarshalBinary()
		var d Config
		if err := d.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(c, d) {
			t.Fatalf("re-decoding: %v", err)
		}
	})
}

// FuzzUnpack: Unpack never panics and accepts only canonical packings.
func FuzzUnpack(f *testing.F) {
	f.Add([]byte{1, 2, 3}, uint16(3), uint8(7))
	f.Add([]byte{0xff, 0xff}, uint16(2), uint8(8))
	f.Fuzz(func(t *testing.T, data []byte, n uint16, m uint8) {
		vals, err := Unpack(data, int(n), int(m))
		if err != nil {
			return
		}
		again, err := Pack(vals, int(m))
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("unpacked values re-pack differently: %v", err)
		}
	})
}

// FuzzServerMessages: whatever a client sends, once decoded, the server
// refuses or accepts it without panicking, in every phase.
func FuzzServerMessages(f *testing.F) {
	for _, ka := range []KeyAgreement{X25519, XWing} {
		for _, name := range []string{"advertise", "sharekeys", "masked", "response"} {
			f.Add(sampleMessages(f, ka)[name], uint8(ka))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, ka uint8) {
		cfg := Config{Round: 3, Seed: [32]byte{7}, N: 5, Bits: 4, TotalWeight: 5, Length: 10, KeyAgreement: KeyAgreement(ka%2 + 1)}
		srv, err := NewServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var ak AdvertiseKeys
		if ak.UnmarshalBinary(data) == nil {
			_ = srv.AddKeys(&ak)
		}
		_, _ = srv.KeyBundles()
		var sk ShareKeys
		if sk.UnmarshalBinary(data) == nil {
			_ = srv.AddShares(&sk)
		}
		_, _ = srv.ShareBundles()
		var mi MaskedInput
		if mi.UnmarshalBinary(data) == nil {
			_ = srv.AddMaskedInput(&mi)
		}
		_, _ = srv.UnmaskRequest()
		var ur UnmaskResponse
		if ur.UnmarshalBinary(data) == nil {
			_ = srv.AddUnmask(&ur)
		}
		_, _ = srv.Result()
	})
}

// FuzzClientMessages: whatever the server relays, once decoded, a client
// refuses or accepts it without panicking, in every phase.
func FuzzClientMessages(f *testing.F) {
	for _, ka := range []KeyAgreement{X25519, XWing} {
		for _, name := range []string{"keybundle", "sharebundle", "request"} {
			f.Add(sampleMessages(f, ka)[name], uint8(ka))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, ka uint8) {
		cfg := Config{Round: 3, Seed: [32]byte{7}, N: 5, Bits: 4, TotalWeight: 5, Length: 10, KeyAgreement: KeyAgreement(ka%2 + 1)}
		var kb KeyBundle
		var sb ShareBundle
		var req UnmaskRequest
		for id := uint32(1); id <= 2; id++ {
			c, err := NewClient(cfg, id, seededReader(9, id))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.AdvertiseKeys(); err != nil {
				t.Fatal(err)
			}
			if kb.UnmarshalBinary(data) == nil {
				_, _ = c.ShareKeys(&kb)
			}
			if sb.UnmarshalBinary(data) == nil {
				_, _ = c.MaskedInput(&sb, make([]uint64, 10))
			}
			if req.UnmarshalBinary(data) == nil {
				_, _ = c.Unmask(&req)
			}
		}
	})
}
