package secure

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
)

func TestInitDirLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "coord")
	now := time.Now()
	if err := InitDir(dir, InitOptions{Now: now}); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got, want := strings.Join(names, " "), "age.key age.pub ca.key ca.pem cluster.key server.key server.pem sign.key sign.pub"; got != want {
		t.Errorf("files: %s\nwant:  %s", got, want)
	}
	if runtime.GOOS != "windows" {
		if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
			t.Errorf("folder permissions %04o, want 0700", fi.Mode().Perm())
		}
		for _, f := range dirFiles {
			fi, err := os.Stat(filepath.Join(dir, f.name))
			if err != nil {
				t.Fatal(err)
			}
			if f.secret && fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: permissions %04o, want 0600", f.name, fi.Mode().Perm())
			}
			if !f.secret && fi.Mode().Perm()&0o077 == 0o077 {
				t.Errorf("%s: permissions %04o", f.name, fi.Mode().Perm())
			}
		}
	}

	co, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if co.Dir != dir || co.Authority.Cert.Subject.CommonName != "coordinator CA" {
		t.Errorf("Dir %q, CA %q", co.Dir, co.Authority.Cert.Subject.CommonName)
	}
	if ca := co.Authority.Cert; ca.NotAfter.Sub(now) < 10*year-time.Minute {
		t.Errorf("CA expires %v, want in 10 years", ca.NotAfter)
	}
	srv, err := ParseCertificate(co.ServerCertPEM)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Subject.CommonName != "coordinator" || strings.Join(srv.DNSNames, ",") != "localhost" || len(srv.IPAddresses) != 2 {
		t.Errorf("server certificate: CN %q DNS %v IPs %v", srv.Subject.CommonName, srv.DNSNames, srv.IPAddresses)
	}
	if d := srv.NotAfter.Sub(now); d < year-time.Minute || d > year {
		t.Errorf("server certificate valid for %v, want a year", d)
	}
	if _, ok := co.Identity.(*age.HybridIdentity); !ok || !strings.HasPrefix(co.Recipient, "age1pq1") {
		t.Errorf("age identity %T, recipient %.10s...: want hybrid", co.Identity, co.Recipient)
	}
	if co.Signer.Scheme() != SchemeEd25519 || len(co.ClusterKey) != ClusterKeySize {
		t.Errorf("signer %s, cluster key %d bytes", co.Signer.Scheme(), len(co.ClusterKey))
	}
	if _, err := co.ServerTLS(); err != nil {
		t.Error(err)
	}

	// The age identity file is what age-keygen writes, readable by the age tool.
	idFile, _ := os.ReadFile(filepath.Join(dir, FileAgeIdentity))
	if ids, err := age.ParseIdentities(bytes.NewReader(idFile)); err != nil || len(ids) != 1 {
		t.Errorf("age.key is not an age identity file: %v", err)
	}

	err = InitDir(dir, InitOptions{})
	if err == nil || !strings.Contains(err.Error(), "already initialized") {
		t.Errorf("second InitDir: err = %v", err)
	}
	again, err := LoadDir(dir)
	if err != nil || !again.Authority.Cert.Equal(co.Authority.Cert) {
		t.Errorf("material changed after a refused InitDir: %v", err)
	}
}

func TestInitDirOptions(t *testing.T) {
	co := newTestCoordinator(t, InitOptions{Name: "hub-1", Hosts: []string{"fed.example.org", "10.0.0.5"},
		AgeKind: AgeX25519, SignScheme: "ml-dsa-65", Validity: 30 * 24 * time.Hour})
	if co.Authority.Cert.Subject.CommonName != "hub-1 CA" {
		t.Errorf("CA CN %q", co.Authority.Cert.Subject.CommonName)
	}
	srv, _ := ParseCertificate(co.ServerCertPEM)
	if srv.Subject.CommonName != "hub-1" || srv.DNSNames[0] != "fed.example.org" || srv.IPAddresses[0].String() != "10.0.0.5" {
		t.Errorf("server certificate: CN %q DNS %v IPs %v", srv.Subject.CommonName, srv.DNSNames, srv.IPAddresses)
	}
	if _, ok := co.Identity.(*age.X25519Identity); !ok {
		t.Errorf("age identity %T, want X25519", co.Identity)
	}
	if co.Signer.Scheme() != SchemeMLDSA65 {
		t.Errorf("signer %s", co.Signer.Scheme())
	}

	for _, c := range []struct {
		opts InitOptions
		want string
	}{
		{InitOptions{Name: "bad name"}, "not allowed"},
		{InitOptions{Hosts: []string{"bad host"}}, "not a valid DNS name"},
		{InitOptions{AgeKind: "rsa"}, "unknown kind"},
		{InitOptions{SignScheme: "RSA"}, "unknown signature scheme"},
		{InitOptions{Validity: -time.Hour}, "negative"},
	} {
		dir := filepath.Join(t.TempDir(), "coord")
		err := InitDir(dir, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("InitDir(%+v): err = %v, want %q", c.opts, err, c.want)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("InitDir(%+v) failed but left %s behind", c.opts, dir)
		}
	}
	file := filepath.Join(t.TempDir(), "plain")
	os.WriteFile(file, nil, 0o600)
	if err := InitDir(file, InitOptions{}); err == nil || !strings.Contains(err.Error(), "not a folder") {
		t.Errorf("InitDir on a file: %v", err)
	}
}

func TestLoadDirErrors(t *testing.T) {
	base := filepath.Join(t.TempDir(), "coord")
	if err := InitDir(base, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other")
	if err := InitDir(other, InitOptions{SignScheme: SchemeEd25519}); err != nil {
		t.Fatal(err)
	}
	// copyDir makes a fresh copy of base to break in one way.
	copyDir := func(t *testing.T) string {
		d := filepath.Join(t.TempDir(), "c")
		os.Mkdir(d, 0o700)
		for _, f := range dirFiles {
			data, _ := os.ReadFile(filepath.Join(base, f.name))
			os.WriteFile(filepath.Join(d, f.name), data, 0o600)
		}
		return d
	}
	fromOther := func(name string) func(d string) {
		return func(d string) {
			data, _ := os.ReadFile(filepath.Join(other, name))
			os.WriteFile(filepath.Join(d, name), data, 0o600)
		}
	}
	write := func(name, content string) func(d string) {
		return func(d string) { os.WriteFile(filepath.Join(d, name), []byte(content), 0o600) }
	}
	cases := []struct {
		what   string
		break_ func(d string)
		want   string
	}{
		{"missing age.key", func(d string) { os.Remove(filepath.Join(d, FileAgeIdentity)) }, "age.key is missing"},
		{"missing ca.pem", func(d string) { os.Remove(filepath.Join(d, FileCACert)) }, "ca.pem is missing"},
		{"other CA key", fromOther(FileCAKey), "ca.pem / ca.key"},
		{"server cert of another CA", fromOther(FileServerCert), "server.pem / server.key"},
		{"other server key", fromOther(FileServerKey), "does not match"},
		{"other age.pub", fromOther(FileAgeRecipient), "age.pub: is not the recipient"},
		{"garbage age.key", write(FileAgeIdentity, "hello\n"), "age.key"},
		{"other sign.pub", fromOther(FileVerifyKey), "sign.pub: is not the verification key"},
		{"garbage sign.key", write(FileSigningKey, "kronfed-signing-key:Ed25519:AAAA\n"), "sign.key"},
		{"short cluster key", write(FileClusterSecret, "AAAA\n"), "cluster.key: 3 bytes, want 32"},
		{"bad cluster key", write(FileClusterSecret, "!!\n"), "cluster.key: bad base64"},
		{"folder as file", func(d string) {
			os.Remove(filepath.Join(d, FileCACert))
			os.Mkdir(filepath.Join(d, FileCACert), 0o700)
		}, "not a regular file"},
	}
	if runtime.GOOS != "windows" {
		cases = append(cases,
			struct {
				what   string
				break_ func(d string)
				want   string
			}{"world-readable ca.key", func(d string) { os.Chmod(filepath.Join(d, FileCAKey), 0o644) }, "chmod 600"},
			struct {
				what   string
				break_ func(d string)
				want   string
			}{"group-readable cluster.key", func(d string) { os.Chmod(filepath.Join(d, FileClusterSecret), 0o640) }, "cluster.key holds a secret"},
		)
	}
	for _, c := range cases {
		t.Run(c.what, func(t *testing.T) {
			d := copyDir(t)
			if _, err := LoadDir(d); err != nil {
				t.Fatalf("intact copy: %v", err)
			}
			c.break_(d)
			_, err := LoadDir(d)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err = %v, want %q", err, c.want)
			}
		})
	}
	// Public files may be world-readable.
	d := copyDir(t)
	os.Chmod(filepath.Join(d, FileCACert), 0o644)
	if _, err := LoadDir(d); err != nil {
		t.Errorf("world-readable ca.pem: %v", err)
	}
}

func TestEnroll(t *testing.T) {
	co := newTestCoordinator(t, InitOptions{})
	now := time.Now()
	b, err := co.Enroll("alice", 0, now)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := b.Certificate()
	if err != nil {
		t.Fatal(err)
	}
	if d := cert.NotAfter.Sub(now); d < year-time.Minute || d > year {
		t.Errorf("default validity %v, want a year", d)
	}
	if name, err := VerifyClientCert(b.CAPEM, cert, now); err != nil || name != "alice" {
		t.Errorf("VerifyClientCert = %q, %v", name, err)
	}
	if b.Name != "alice" || b.Recipient != co.Recipient || !bytes.Equal(b.ClusterKey, co.ClusterKey) || b.Coordinator != "" {
		t.Errorf("bundle fields: %+v", b)
	}
	short, err := co.Enroll("bob", time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := short.Certificate(); c.NotAfter.Sub(now) <= time.Hour-time.Second || c.NotAfter.Sub(now) > time.Hour {
		t.Errorf("validity %v, want 1h", c.NotAfter.Sub(now)) // X.509 times have whole seconds
	}
	// Each enrolment gets its own key.
	k1, _ := b.Key()
	k2, _ := short.Key()
	if k1.Public().(ed25519.PublicKey).Equal(k2.Public()) {
		t.Error("two enrolments share a key")
	}
	for _, bad := range []string{"", "a/b", "../x", strings.Repeat("a", 65)} {
		if _, err := co.Enroll(bad, 0, now); err == nil {
			t.Errorf("Enroll(%q) accepted", bad)
		}
	}
}
