package secure

import (
	"path/filepath"
	"testing"
	"time"
)

func newTestCA(t testing.TB, name string, now time.Time) *Authority {
	t.Helper()
	ca, err := NewAuthority(name, now, 10*year)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t testing.TB, ca *Authority, name string, role Role, hosts []string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte) {
	t.Helper()
	c, k, err := ca.Issue(name, role, hosts, now, validity)
	if err != nil {
		t.Fatal(err)
	}
	return c, k
}

func newTestCoordinator(t testing.TB, opts InitOptions) *Coordinator {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "coord")
	if err := InitDir(dir, opts); err != nil {
		t.Fatal(err)
	}
	co, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return co
}

func enroll(t testing.TB, co *Coordinator, name string) *Bundle {
	t.Helper()
	b, err := co.Enroll(name, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
