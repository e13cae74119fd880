package fed

import (
	"context"
	"crypto/tls"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kronfed/kronfed/secure"
)

// TestBackoffDelays: waits grow by the factor up to the cap, each drawn in
// [d/2, d], and two generators with different seeds do not knock in step.
func TestBackoffDelays(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: time.Second, Factor: 2, Rand: rand.New(rand.NewPCG(1, 1))}
	for n, d := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		d *= time.Millisecond
		for range 50 {
			if got := b.Delay(n); got < d/2 || got > d {
				t.Fatalf("delay %d = %v, want in [%v, %v]", n, got, d/2, d)
			}
		}
	}
	c := Backoff{Base: 100 * time.Millisecond, Max: time.Second, Factor: 2, Rand: rand.New(rand.NewPCG(2, 2))}
	same := 0
	for n := range 20 {
		if b.Delay(n) == c.Delay(n) {
			same++
		}
	}
	if same > 2 {
		t.Errorf("%d of 20 delays equal across seeds: no jitter", same)
	}
}

// TestWaitForCoordinator: with nothing listening the wait retries with
// backoff and ends with a WaitError naming the address after the wait; a
// listener that comes up during the wait ends it.
func TestWaitForCoordinator(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there now
	b := Backoff{Base: 20 * time.Millisecond, Max: 80 * time.Millisecond, Factor: 2}
	tries := 0
	err = WaitForCoordinator(context.Background(), addr, &tls.Config{InsecureSkipVerify: true}, 400*time.Millisecond, b,
		func(err error, next, waited time.Duration) { tries++ })
	var we *WaitError
	if !errors.As(err, &we) || !strings.Contains(err.Error(), "no coordinator answered at "+addr) || tries < 3 {
		t.Fatalf("after %d tries: %v", tries, err)
	}
	// A TLS server appears after a few tries: the wait ends without error.
	cert := testServerCert(t)
	go func() {
		time.Sleep(150 * time.Millisecond)
		l, err := tls.Listen("tcp", addr, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
		if err != nil {
			return
		}
		defer l.Close()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	if err := WaitForCoordinator(context.Background(), addr, &tls.Config{InsecureSkipVerify: true}, 10*time.Second, b, nil); err != nil {
		t.Fatalf("coordinator came up: %v", err)
	}
}

// testServerCert is a server certificate for 127.0.0.1 from a fresh CA.
func testServerCert(t *testing.T) tls.Certificate {
	t.Helper()
	ca, err := secure.NewAuthority("wait-test", time.Now(), 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue("coordinator", secure.RoleServer, []string{"127.0.0.1"}, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
