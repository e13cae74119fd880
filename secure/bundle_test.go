package secure

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestBundleRoundTrip(t *testing.T) {
	co := newTestCoordinator(t, InitOptions{SignScheme: SchemeEd25519Dilithium2})
	b := enroll(t, co, "alice")
	b.Coordinator = "fed.example.org:7070"
	data, err := b.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatal(err)
	}
	if fields["format"] != "kronfed-client-bundle" || fields["version"] != 1.0 {
		t.Errorf("format %v version %v", fields["format"], fields["version"])
	}
	for _, k := range []string{"name", "coordinator", "certificate", "key", "ca", "coordinator_recipient", "coordinator_verifier", "cluster_key"} {
		if _, ok := fields[k]; !ok {
			t.Errorf("field %q missing", k)
		}
	}
	back, err := ParseBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	if back.Name != b.Name || back.Coordinator != b.Coordinator || !bytes.Equal(back.CertPEM, b.CertPEM) ||
		!bytes.Equal(back.KeyPEM, b.KeyPEM) || !bytes.Equal(back.CAPEM, b.CAPEM) || back.Recipient != b.Recipient ||
		back.Verifier != b.Verifier || !bytes.Equal(back.ClusterKey, b.ClusterKey) {
		t.Error("ParseBundle(Marshal(b)) differs from b")
	}

	path := filepath.Join(t.TempDir(), "alice.bundle")
	if err := b.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("bundle permissions %04o, want 0600", fi.Mode().Perm())
		}
	}
	if err := b.WriteFile(path); err != nil { // replacing is fine
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("WriteFile left %d files", len(entries))
	}
	got, err := ReadBundle(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "alice" {
		t.Errorf("ReadBundle name %q", got.Name)
	}
	if runtime.GOOS != "windows" {
		os.Chmod(path, 0o644)
		if _, err := ReadBundle(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("world-readable bundle: %v", err)
		}
	}
	if _, err := ReadBundle(filepath.Join(t.TempDir(), "none")); err == nil {
		t.Error("ReadBundle of a missing file: no error")
	}
}

// TestBundleEndToEnd plays one round's cryptography with the material from
// InitDir and Enroll: mutual TLS, a signed broadcast, an encrypted and
// signed upload.
func TestBundleEndToEnd(t *testing.T) {
	for _, opts := range []InitOptions{{}, {AgeKind: AgeX25519, SignScheme: SchemeMLDSA65}} {
		co := newTestCoordinator(t, opts)
		b := enroll(t, co, "alice")
		data, _ := b.Marshal()
		b, err := ParseBundle(data)
		if err != nil {
			t.Fatal(err)
		}

		srv, err := co.ServerTLS()
		if err != nil {
			t.Fatal(err)
		}
		cli, err := b.ClientTLS("localhost")
		if err != nil {
			t.Fatal(err)
		}
		r := handshake(t, srv, cli)
		if r.serverErr != nil || r.clientErr != nil {
			t.Fatalf("handshake: server %v, client %v", r.serverErr, r.clientErr)
		}
		if r.name != "alice" || r.server.CurveID.String() != "X25519MLKEM768" {
			t.Errorf("client %q, key exchange %v", r.name, r.server.CurveID)
		}

		// Broadcast: the coordinator signs, the client verifies.
		assignment := []byte("kronfed/round-assignment/v1 round 1")
		v, err := b.CoordinatorVerifier()
		if err != nil {
			t.Fatal(err)
		}
		if err := v.Verify(assignment, co.Signer.Sign(assignment)); err != nil {
			t.Errorf("broadcast signature: %v", err)
		}

		// Upload: the client encrypts and signs, the coordinator verifies
		// the certificate from the handshake and decrypts.
		rc, err := b.CoordinatorRecipient()
		if err != nil {
			t.Fatal(err)
		}
		key, err := b.Key()
		if err != nil {
			t.Fatal(err)
		}
		update := bytes.Repeat([]byte{7}, 5000)
		ct, err := Encrypt(rc, update)
		if err != nil {
			t.Fatal(err)
		}
		msg := append([]byte("kronfed/upload/v1"), ct...)
		sig, err := SignWithKey(key, msg)
		if err != nil {
			t.Fatal(err)
		}
		peer := r.server.VerifiedChains[0][0]
		if name, err := VerifyClientCert(co.Authority.CertPEM(), peer, time.Now()); err != nil || name != "alice" {
			t.Fatalf("VerifyClientCert: %q, %v", name, err)
		}
		if err := VerifyWithCert(peer, msg, sig); err != nil {
			t.Errorf("upload signature: %v", err)
		}
		plain, err := Decrypt(co.Identity, ct, 1<<20)
		if err != nil || !bytes.Equal(plain, update) {
			t.Errorf("decrypt: %v", err)
		}
	}
}

func TestParseBundleErrors(t *testing.T) {
	co := newTestCoordinator(t, InitOptions{})
	other := newTestCoordinator(t, InitOptions{})
	alice := enroll(t, co, "alice")
	bob := enroll(t, co, "bob")
	foreign := enroll(t, other, "alice")
	good, err := alice.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	set := func(k string, v any) []byte { return edit(func(m map[string]any) { m[k] = v }) }
	del := func(k string) []byte { return edit(func(m map[string]any) { delete(m, k) }) }
	bobKey, bobCert := string(bob.KeyPEM), string(bob.CertPEM)
	for _, c := range []struct {
		what string
		data []byte
		want string
	}{
		{"empty", nil, "not a kronfed client bundle"},
		{"not JSON", []byte("AGE-SECRET-KEY-1..."), "not a kronfed client bundle"},
		{"JSON array", []byte("[]"), "not a kronfed client bundle"},
		{"trailing data", append(bytes.Clone(good), "{}"...), "after the JSON object"},
		{"too large", bytes.Repeat([]byte(" "), maxBundle+1), "larger than"},
		{"format", set("format", "kronfed-bundle"), `field "format"`},
		{"no format", del("format"), `field "format"`},
		{"version 2", set("version", 2), `field "version" is 2`},
		{"unknown field", set("extra", 1), "unknown field"},
		{"bad name", set("name", "a b"), `field "name"`},
		{"name not the CN", set("name", "bob"), `issued to "alice", but the bundle is named "bob"`},
		{"key of another client", set("key", bobKey), `fields "key" and "certificate": private key does not match`},
		{"certificate of another client", set("certificate", bobCert), `fields "key" and "certificate"`},
		{"no key", del("key"), `field "key"`},
		{"certificate from a foreign CA", edit(func(m map[string]any) {
			m["certificate"], m["key"] = string(foreign.CertPEM), string(foreign.KeyPEM)
		}), `field "certificate": not issued by the bundle's CA`},
		{"CA is a leaf", set("ca", bobCert), `field "ca"`},
		{"server certificate", edit(func(m map[string]any) {
			m["certificate"], m["key"], m["name"] = string(co.ServerCertPEM), string(co.ServerKeyPEM), "coordinator"
		}), "not a client certificate"},
		{"recipient", set("coordinator_recipient", "age1nope"), `field "coordinator_recipient"`},
		{"recipient with newline", set("coordinator_recipient", alice.Recipient+"\n"), `field "coordinator_recipient"`},
		{"two recipients", set("coordinator_recipient", alice.Recipient+"\n"+other.Recipient), `field "coordinator_recipient"`},
		{"verifier", set("coordinator_verifier", "kronfed-verify-key:Ed25519:AAAA"), `field "coordinator_verifier"`},
		{"cluster key length", set("cluster_key", "AAAA"), `field "cluster_key": 3 bytes`},
		{"cluster key base64", set("cluster_key", "!!"), "not a kronfed client bundle"},
		{"no cluster key", del("cluster_key"), `field "cluster_key"`},
		{"coordinator with space", set("coordinator", "a b:1"), `field "coordinator"`},
		{"coordinator control char", set("coordinator", "a\x00:1"), `field "coordinator"`},
	} {
		_, err := ParseBundle(c.data)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.what, err, c.want)
			continue
		}
		// Never quote the private key in an error.
		if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), string(alice.KeyPEM[40:60])) {
			t.Errorf("%s: error quotes the key: %v", c.what, err)
		}
	}

	broken := *alice
	broken.KeyPEM = bob.KeyPEM
	if _, err := broken.Marshal(); err == nil {
		t.Error("Marshal of a bundle whose key does not match its certificate: no error")
	}
	if err := broken.WriteFile(filepath.Join(t.TempDir(), "x")); err == nil {
		t.Error("WriteFile of an invalid bundle: no error")
	}
}
