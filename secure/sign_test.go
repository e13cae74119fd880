package secure

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestSignersEachScheme(t *testing.T) {
	msg := []byte("kronfed/round-assignment/v1 round 7")
	for _, scheme := range SignSchemes() {
		t.Run(scheme, func(t *testing.T) {
			s, err := GenerateSigner(scheme)
			if err != nil {
				t.Fatal(err)
			}
			if s.Scheme() != scheme || s.Verifier().Scheme() != scheme {
				t.Errorf("Scheme() = %q / %q", s.Scheme(), s.Verifier().Scheme())
			}
			sig := s.Sign(msg)
			v := s.Verifier()
			if err := v.Verify(msg, sig); err != nil {
				t.Fatalf("Verify: %v", err)
			}

			other, err := GenerateSigner(scheme)
			if err != nil {
				t.Fatal(err)
			}
			tampered := bytes.Clone(msg)
			tampered[len(tampered)-1] ^= 1
			badSig := bytes.Clone(sig)
			badSig[len(badSig)/2] ^= 0x10
			for what, err := range map[string]error{
				"tampered message":   v.Verify(tampered, sig),
				"tampered signature": v.Verify(msg, badSig),
				"wrong key":          other.Verifier().Verify(msg, sig),
				"short signature":    v.Verify(msg, sig[:len(sig)-1]),
				"long signature":     v.Verify(msg, append(bytes.Clone(sig), 0)),
				"no signature":       v.Verify(msg, nil),
			} {
				if !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), scheme) {
					t.Errorf("%s: err = %v, want ErrBadSignature naming %s", what, err, scheme)
				}
			}

			// Text round trips: the parsed signer derives the same key pair.
			st, err := s.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(st), "kronfed-signing-key:"+scheme+":") {
				t.Errorf("signing key text %.40s...", st)
			}
			s2, err := ParseSigner(append(append([]byte(" \n"), st...), '\n'))
			if err != nil {
				t.Fatal(err)
			}
			if !s2.Verifier().Equal(v) {
				t.Error("parsed signer has another public key")
			}
			if err := v.Verify(msg, s2.Sign(msg)); err != nil {
				t.Errorf("signature of the parsed signer: %v", err)
			}
			vt, err := v.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(vt), "kronfed-verify-key:"+scheme+":") {
				t.Errorf("verification key text %.40s...", vt)
			}
			v2, err := ParseVerifier(vt)
			if err != nil {
				t.Fatal(err)
			}
			if !v2.Equal(v) || v2.Equal(other.Verifier()) {
				t.Error("Verifier.Equal after a text round trip")
			}
			if err := v2.Verify(msg, sig); err != nil {
				t.Errorf("parsed verifier: %v", err)
			}
			if _, err := ParseVerifier(st); err == nil {
				t.Error("ParseVerifier accepted a signing key")
			}
			if _, err := ParseSigner(vt); err == nil {
				t.Error("ParseSigner accepted a verification key")
			}
		})
	}
}

func TestSignatureCrossScheme(t *testing.T) {
	msg := []byte("m")
	var signers []*Signer
	for _, scheme := range SignSchemes() {
		s, err := GenerateSigner(scheme)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
	}
	for i, a := range signers {
		for j, b := range signers {
			if i != j && !errors.Is(a.Verifier().Verify(msg, b.Sign(msg)), ErrBadSignature) {
				t.Errorf("%s verified a %s signature", a.Scheme(), b.Scheme())
			}
		}
	}
}

func TestSchemeNames(t *testing.T) {
	for in, want := range map[string]string{"": "Ed25519", "ed25519": "Ed25519", "ml-dsa-65": "ML-DSA-65", "ED25519-DILITHIUM2": "Ed25519-Dilithium2"} {
		s, err := GenerateSigner(in)
		if err != nil {
			t.Fatalf("GenerateSigner(%q): %v", in, err)
		}
		if s.Scheme() != want {
			t.Errorf("GenerateSigner(%q).Scheme() = %q, want %q", in, s.Scheme(), want)
		}
	}
	for _, bad := range []string{"RSA", "Ed448", "ML-DSA-44", "SLH-DSA-SHA2-128s", "Dilithium2"} {
		if _, err := GenerateSigner(bad); err == nil || !strings.Contains(err.Error(), "unknown signature scheme") {
			t.Errorf("GenerateSigner(%q): %v", bad, err)
		}
	}
}

func TestParseKeyTextErrors(t *testing.T) {
	s, _ := GenerateSigner(SchemeEd25519)
	st, _ := s.MarshalText()
	seed := strings.SplitN(string(st), ":", 3)[2]
	vt, _ := s.Verifier().MarshalText()
	pub := strings.SplitN(string(vt), ":", 3)[2]
	short := base64.StdEncoding.EncodeToString(make([]byte, 31))
	for _, c := range []struct {
		text, want string
	}{
		{"", "want"},
		{"kronfed-signing-key", "want"},
		{"kronfed-signing-key:Ed25519", "want"},
		{"kronfed-signing-key:Ed25519:" + seed + ":x", "want"},
		{"other-key:Ed25519:" + seed, "want"},
		{"kronfed-signing-key:RSA:" + seed, "unknown signature scheme"},
		{"kronfed-signing-key:Ed25519:" + seed[:10] + "!" + seed[11:], "base64"},
		{"kronfed-signing-key:Ed25519:" + strings.TrimRight(seed, "="), "base64"},
		{"kronfed-signing-key:Ed25519:" + short, "32"},
		{"kronfed-signing-key:ML-DSA-65:" + short, "32"},
		{"kronfed-signing-key:Ed25519:" + strings.Repeat("A", 10000), "too long"},
	} {
		if _, err := ParseSigner([]byte(c.text)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseSigner(%.50q): err = %v, want %q", c.text, err, c.want)
		} else if len(seed) > 10 && strings.Contains(err.Error(), seed[:10]) {
			t.Errorf("ParseSigner error quotes the key: %v", err)
		}
	}
	for _, c := range []struct {
		text, want string
	}{
		{"kronfed-verify-key:Ed25519:" + short, "31 bytes"},
		{"kronfed-verify-key:ML-DSA-65:" + pub, "want 1952"},
		{"kronfed-verify-key:Ed25519-Dilithium2:" + pub, "bytes, want"},
		{"kronfed-verify-key:Ed25519:" + pub + "\nkronfed-verify-key:Ed25519:" + pub, "want"},
	} {
		if _, err := ParseVerifier([]byte(c.text)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseVerifier(%.50q): err = %v, want %q", c.text, err, c.want)
		}
	}
}
