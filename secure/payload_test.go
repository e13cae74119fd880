package secure

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
)

func genIdentity(t testing.TB, kind string) (age.Identity, age.Recipient, string, string) {
	t.Helper()
	idText, rcptText, err := GenerateIdentity(kind)
	if err != nil {
		t.Fatal(err)
	}
	id, err := ParseIdentity(idText)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRecipient(rcptText)
	if err != nil {
		t.Fatal(err)
	}
	return id, r, idText, rcptText
}

func TestGenerateIdentityKinds(t *testing.T) {
	for kind, prefixes := range map[string][2]string{
		"":        {"AGE-SECRET-KEY-PQ-1", "age1pq1"},
		AgeHybrid: {"AGE-SECRET-KEY-PQ-1", "age1pq1"},
		AgeX25519: {"AGE-SECRET-KEY-1", "age1"},
	} {
		id, r, err := GenerateIdentity(kind)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(id, prefixes[0]) || !strings.HasPrefix(r, prefixes[1]) {
			t.Errorf("kind %q: identity %.20s..., recipient %.10s...", kind, id, r)
		}
		if kind == AgeX25519 && strings.HasPrefix(r, "age1pq1") {
			t.Errorf("x25519 recipient is hybrid")
		}
	}
	if _, _, err := GenerateIdentity("rsa"); err == nil || !strings.Contains(err.Error(), "unknown kind") {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestEncryptDecryptRoundTrip(t *testing.T) {
	big := make([]byte, 200<<10) // several 64 KiB age chunks
	rand.Read(big)
	for _, kind := range []string{AgeHybrid, AgeX25519} {
		id, r, _, _ := genIdentity(t, kind)
		for _, plain := range [][]byte{nil, []byte("adapter factors"), big} {
			ct, err := Encrypt(r, plain)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(ct, []byte("age-encryption.org/v1\n")) {
				t.Fatalf("%s: not the binary age format", kind)
			}
			got, err := Decrypt(id, ct, int64(len(plain)))
			if err != nil {
				t.Fatalf("%s, %d bytes: %v", kind, len(plain), err)
			}
			if !bytes.Equal(got, plain) {
				t.Fatalf("%s, %d bytes: round trip changed the plaintext", kind, len(plain))
			}
		}
	}
}

func TestDecryptFailures(t *testing.T) {
	for _, kind := range []string{AgeHybrid, AgeX25519} {
		t.Run(kind, func(t *testing.T) {
			id, r, _, _ := genIdentity(t, kind)
			otherSame, _, _, _ := genIdentity(t, kind)
			otherKind := AgeX25519
			if kind == AgeX25519 {
				otherKind = AgeHybrid
			}
			otherDiff, _, _, _ := genIdentity(t, otherKind)
			plain := make([]byte, 70<<10)
			rand.Read(plain)
			ct, err := Encrypt(r, plain)
			if err != nil {
				t.Fatal(err)
			}
			max := int64(len(plain))

			// Flip one byte in the header's stanza, the header MAC, the
			// nonce, the first chunk and the last byte (final chunk tag).
			hdrEnd := bytes.Index(ct, []byte("\n--- ")) + 1
			for _, pos := range []int{30, hdrEnd + 10, hdrEnd + 50, hdrEnd + 100, len(ct) / 2, len(ct) - 1} {
				bad := bytes.Clone(ct)
				bad[pos] ^= 0x01
				if _, err := Decrypt(id, bad, max); err == nil {
					t.Errorf("tampered byte %d of %d: decrypted", pos, len(ct))
				} else if !strings.HasPrefix(err.Error(), "decrypt upload: ") {
					t.Errorf("error %q does not start with \"decrypt upload: \"", err)
				}
			}
			for _, n := range []int{0, 10, hdrEnd, len(ct) - 17, len(ct) - 1} {
				if _, err := Decrypt(id, ct[:n], max); err == nil {
					t.Errorf("truncated to %d bytes: decrypted", n)
				}
			}
			if _, err := Decrypt(id, append(bytes.Clone(ct), 0), max); err == nil {
				t.Error("trailing byte: decrypted")
			}
			for what, wrong := range map[string]age.Identity{"same kind": otherSame, "other kind": otherDiff} {
				_, err := Decrypt(wrong, ct, max)
				var nm *age.NoIdentityMatchError
				if !errors.As(err, &nm) {
					t.Errorf("wrong identity (%s): err = %v, want a NoIdentityMatchError", what, err)
				}
			}
			if _, err := Decrypt(nil, ct, max); err == nil {
				t.Error("nil identity: no error")
			}
		})
	}
}

func TestDecryptPlaintextCap(t *testing.T) {
	id, r, _, _ := genIdentity(t, AgeHybrid)
	plain := bytes.Repeat([]byte("k"), 100_000)
	ct, err := Encrypt(r, plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Decrypt(id, ct, int64(len(plain))); err != nil {
		t.Errorf("at the cap: %v", err)
	}
	_, err = Decrypt(id, ct, int64(len(plain))-1)
	if err == nil || !strings.Contains(err.Error(), "more than the 99999 allowed") {
		t.Errorf("over the cap: err = %v", err)
	}
	if _, err := Decrypt(id, ct, 0); err == nil {
		t.Error("cap 0 accepted a non-empty plaintext")
	}
	if _, err := Decrypt(id, ct, -1); err == nil {
		t.Error("negative cap accepted")
	}
	empty, _ := Encrypt(r, nil)
	if got, err := Decrypt(id, empty, 0); err != nil || len(got) != 0 {
		t.Errorf("empty plaintext under cap 0: %q, %v", got, err)
	}
}

func TestParseIdentityRecipient(t *testing.T) {
	_, _, hid, hr := genIdentity(t, AgeHybrid)
	_, _, xid, xr := genIdentity(t, AgeX25519)
	for _, s := range []string{hid, xid, "\n" + xid + "\n", "# created: today\n# public key: " + xr + "\n" + hid + "\n"} {
		if _, err := ParseIdentity(s); err != nil {
			t.Errorf("ParseIdentity: %v", err)
		}
	}
	for _, s := range []string{hr, xr, hr + "\n", "# coordinator\n" + xr} {
		if _, err := ParseRecipient(s); err != nil {
			t.Errorf("ParseRecipient: %v", err)
		}
	}
	secretish := hid[:len(hid)-3] + "xyz" // bad checksum
	for _, s := range []string{"", "# only a comment\n", "AGE-SECRET-KEY-1", secretish, hr, hid + "\n" + xid} {
		_, err := ParseIdentity(s)
		if err == nil {
			t.Errorf("ParseIdentity(%.25q...) accepted", s)
			continue
		}
		if len(s) > 30 && strings.Contains(err.Error(), s[20:30]) {
			t.Errorf("ParseIdentity error quotes the secret: %v", err)
		}
	}
	for _, s := range []string{"", "age1", "age1pq1xyz", hid, xr + "\n" + hr, "ssh-ed25519 AAAA"} {
		if _, err := ParseRecipient(s); err == nil {
			t.Errorf("ParseRecipient(%.25q...) accepted", s)
		}
	}
	if _, err := Encrypt(nil, []byte("x")); err == nil {
		t.Error("Encrypt to a nil recipient: no error")
	}
}
