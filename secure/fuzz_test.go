package secure

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"filippo.io/age"
)

// The fuzz targets check that the parsers of untrusted input never panic,
// and that whatever they accept round-trips. Normal test runs execute only
// the seeds; fuzz with
//
//	go test -run='^$' -fuzz=FuzzParseBundle -fuzztime=15s ./secure/

func FuzzParseBundle(f *testing.F) {
	co := newTestCoordinator(f, InitOptions{})
	b := enroll(f, co, "alice")
	b.Coordinator = "127.0.0.1:7070"
	good, err := b.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"version": 1`), []byte(`"version": 2`), 1))
	f.Add(bytes.Replace(good, []byte(`"name": "alice"`), []byte(`"name": "bob"`), 1))
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{"format":"kronfed-client-bundle","version":1}`))
	f.Add([]byte(`{"format":"kronfed-client-bundle","version":1,"certificate":"-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n"}`))
	f.Add([]byte("null"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			return
		}
		again, err := b.Marshal()
		if err != nil {
			t.Fatalf("accepted bundle does not marshal: %v", err)
		}
		b2, err := ParseBundle(again)
		if err != nil {
			t.Fatalf("re-marshalled bundle does not parse: %v", err)
		}
		if b2.Name != b.Name || !bytes.Equal(b2.CertPEM, b.CertPEM) || b2.Verifier != b.Verifier {
			t.Fatal("bundle changed across a round trip")
		}
		if _, err := b.ClientTLS("localhost"); err != nil {
			t.Fatalf("accepted bundle has no TLS config: %v", err)
		}
		if _, err := b.CoordinatorVerifier(); err != nil {
			t.Fatal(err)
		}
		if _, err := b.CoordinatorRecipient(); err != nil {
			t.Fatal(err)
		}
	})
}

func verifierSeeds(f *testing.F) [][]byte {
	var seeds [][]byte
	for _, scheme := range SignSchemes() {
		s, err := GenerateSigner(scheme)
		if err != nil {
			f.Fatal(err)
		}
		vt, _ := s.Verifier().MarshalText()
		st, _ := s.MarshalText()
		seeds = append(seeds, vt, st)
	}
	return seeds
}

func FuzzParseVerifier(f *testing.F) {
	for _, s := range verifierSeeds(f) {
		f.Add(s, []byte("msg"), []byte("sig"))
	}
	s, _ := GenerateSigner(SchemeEd25519)
	vt, _ := s.Verifier().MarshalText()
	f.Add(vt, []byte("msg"), s.Sign([]byte("msg")))
	f.Add([]byte("kronfed-verify-key:ML-DSA-65:"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 1952))), []byte{}, []byte{})
	f.Add([]byte("kronfed-verify-key:Ed25519-Dilithium2:"+base64.StdEncoding.EncodeToString(make([]byte, 1344))), []byte{}, make([]byte, 2484))
	f.Add([]byte("kronfed-verify-key:Ed25519:"), []byte{}, []byte{})
	f.Add([]byte(":::"), []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, text, msg, sig []byte) {
		v, err := ParseVerifier(text)
		if err != nil {
			return
		}
		_ = v.Verify(msg, sig) // must not panic, whatever the key
		out, err := v.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		v2, err := ParseVerifier(out)
		if err != nil || !v2.Equal(v) {
			t.Fatalf("verifier round trip: %v", err)
		}
		if strings.TrimSpace(string(text)) != string(out) && !strings.EqualFold(strings.TrimSpace(string(text)), string(out)) {
			// Only the scheme name's case may differ from the canonical text.
			t.Fatalf("accepted non-canonical text %q, canonical %q", text, out)
		}
	})
}

func FuzzParseSigner(f *testing.F) {
	for _, s := range verifierSeeds(f) {
		f.Add(s)
	}
	f.Add([]byte("kronfed-signing-key:Ed25519:" + base64.StdEncoding.EncodeToString(make([]byte, 32))))
	f.Add([]byte("kronfed-signing-key:ML-DSA-65:" + base64.StdEncoding.EncodeToString(make([]byte, 31))))
	f.Add([]byte("kronfed-signing-key:ed25519-dilithium2:AAAA"))
	f.Fuzz(func(t *testing.T, text []byte) {
		s, err := ParseSigner(text)
		if err != nil {
			return
		}
		msg := []byte("fuzz")
		if err := s.Verifier().Verify(msg, s.Sign(msg)); err != nil {
			t.Fatalf("parsed signer's signature does not verify: %v", err)
		}
		out, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		s2, err := ParseSigner(out)
		if err != nil || !s2.Verifier().Equal(s.Verifier()) {
			t.Fatalf("signer round trip: %v", err)
		}
	})
}

func FuzzDecrypt(f *testing.F) {
	hybrid, hr, _, _ := genIdentity(f, AgeHybrid)
	x, xr, _, _ := genIdentity(f, AgeX25519)
	for _, r := range []age.Recipient{hr, xr} {
		for _, plain := range [][]byte{nil, []byte("update"), bytes.Repeat([]byte{1}, 70<<10)} {
			ct, err := Encrypt(r, plain)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(ct, int64(len(plain)))
			f.Add(ct, int64(len(plain))-1)
			bad := bytes.Clone(ct)
			bad[len(bad)-1] ^= 1
			f.Add(bad, int64(1<<20))
		}
	}
	f.Add([]byte("age-encryption.org/v1\n-> X25519 AAAA\nAAAA\n--- AAAA\n"), int64(100))
	f.Add([]byte("age-encryption.org/v1\n"), int64(0))
	f.Add([]byte{}, int64(-1))
	f.Fuzz(func(t *testing.T, ct []byte, max int64) {
		for _, id := range []age.Identity{hybrid, x} {
			plain, err := Decrypt(id, ct, max)
			if err != nil {
				continue
			}
			if int64(len(plain)) > max {
				t.Fatalf("returned %d bytes, over the cap %d", len(plain), max)
			}
		}
	})
}
