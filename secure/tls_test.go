package secure

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

type handshakeResult struct {
	server    tls.ConnectionState
	serverErr error
	client    tls.ConnectionState
	clientErr error
	name      string // ClientName on the server side
}

// handshake runs a real TLS handshake over loopback TCP between srv and
// cli, then one byte each way so that a server-side refusal of the client
// certificate (sent after the client's Finished in TLS 1.3) reaches the
// client too.
func handshake(t *testing.T, srv, cli *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Skipf("no loopback TCP: %v", err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)

	type srvOut struct {
		cs   tls.ConnectionState
		name string
		err  error
	}
	done := make(chan srvOut, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- srvOut{err: err}
			return
		}
		defer raw.Close()
		raw.SetDeadline(deadline)
		c := tls.Server(raw, srv)
		if err := c.Handshake(); err != nil {
			done <- srvOut{err: err}
			return
		}
		cs := c.ConnectionState()
		name, err := ClientName(cs)
		if err == nil {
			var b [1]byte
			if _, err = io.ReadFull(c, b[:]); err == nil {
				_, err = c.Write(b[:])
			}
		}
		done <- srvOut{cs: cs, name: name, err: err}
	}()

	var res handshakeResult
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(deadline)
	c := tls.Client(raw, cli)
	res.clientErr = c.Handshake()
	if res.clientErr == nil {
		res.client = c.ConnectionState()
		var b [1]byte
		if _, err := c.Write([]byte{'k'}); err != nil {
			res.clientErr = err
		} else if _, err := io.ReadFull(c, b[:]); err != nil {
			res.clientErr = err
		}
	}
	raw.Close()
	out := <-done
	res.server, res.serverErr, res.name = out.cs, out.err, out.name
	return res
}

// clientConfigFrom builds a client TLS config from any certificate and key,
// bypassing ClientTLS's own checks, to see that the server refuses them.
func clientConfigFrom(t *testing.T, certPEM, keyPEM, caPEM []byte) *tls.Config {
	t.Helper()
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	pool, _, err := caPool(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair}, RootCAs: pool, ServerName: "localhost"}
}

func TestTLSHandshakePostQuantum(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "fed", now)
	srvCert, srvKey := issue(t, ca, "coord", RoleServer, []string{"localhost", "127.0.0.1"}, now, year)
	cliCert, cliKey := issue(t, ca, "alice", RoleClient, nil, now, year)
	srv, err := ServerTLS(srvCert, srvKey, ca.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	if srv.MinVersion != tls.VersionTLS13 || srv.ClientAuth != tls.RequireAndVerifyClientCert || srv.CurvePreferences != nil {
		t.Errorf("server config: MinVersion %x ClientAuth %v CurvePreferences %v", srv.MinVersion, srv.ClientAuth, srv.CurvePreferences)
	}
	for _, serverName := range []string{"localhost", "127.0.0.1"} {
		cli, err := ClientTLS(cliCert, cliKey, ca.CertPEM(), serverName)
		if err != nil {
			t.Fatal(err)
		}
		r := handshake(t, srv, cli)
		if r.serverErr != nil || r.clientErr != nil {
			t.Fatalf("%s: handshake: server %v, client %v", serverName, r.serverErr, r.clientErr)
		}
		for side, cs := range map[string]tls.ConnectionState{"server": r.server, "client": r.client} {
			if cs.Version != tls.VersionTLS13 {
				t.Errorf("%s: version %x, want TLS 1.3", side, cs.Version)
			}
			if cs.CurveID != tls.X25519MLKEM768 {
				t.Errorf("%s: key exchange %v, want X25519MLKEM768", side, cs.CurveID)
			}
		}
		if r.name != "alice" {
			t.Errorf("ClientName = %q, want alice", r.name)
		}
		if got := r.client.PeerCertificates[0].Subject.CommonName; got != "coord" {
			t.Errorf("client sees server %q", got)
		}
	}
}

func TestTLSRefusals(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "fed", now.Add(-3*year))
	foreign := newTestCA(t, "fed", now)
	srvCert, srvKey := issue(t, ca, "coord", RoleServer, []string{"localhost"}, now, year)
	srv, err := ServerTLS(srvCert, srvKey, ca.CertPEM())
	if err != nil {
		t.Fatal(err)
	}
	goodCert, goodKey := issue(t, ca, "alice", RoleClient, nil, now, year)

	t.Run("client cert from a foreign CA", func(t *testing.T) {
		c, k := issue(t, foreign, "alice", RoleClient, nil, now, year)
		r := handshake(t, srv, clientConfigFrom(t, c, k, ca.CertPEM()))
		if r.serverErr == nil || r.clientErr == nil {
			t.Errorf("accepted: server %v, client %v", r.serverErr, r.clientErr)
		}
	})
	t.Run("expired client cert", func(t *testing.T) {
		c, k := issue(t, ca, "alice", RoleClient, nil, now.Add(-2*year), year)
		cli, err := ClientTLS(c, k, ca.CertPEM(), "localhost")
		if err != nil {
			t.Fatal(err)
		}
		r := handshake(t, srv, cli)
		if r.serverErr == nil || r.clientErr == nil {
			t.Errorf("accepted: server %v, client %v", r.serverErr, r.clientErr)
		} else if !strings.Contains(r.serverErr.Error(), "expired") {
			t.Errorf("server error %v does not say expired", r.serverErr)
		}
	})
	t.Run("server cert used as client cert", func(t *testing.T) {
		if _, err := ClientTLS(srvCert, srvKey, ca.CertPEM(), "localhost"); err == nil {
			t.Error("ClientTLS accepted a server certificate")
		}
		r := handshake(t, srv, clientConfigFrom(t, srvCert, srvKey, ca.CertPEM()))
		if r.serverErr == nil || r.clientErr == nil {
			t.Errorf("accepted: server %v, client %v", r.serverErr, r.clientErr)
		}
	})
	t.Run("client cert without ExtKeyUsage", func(t *testing.T) {
		// Go's chain verification treats a certificate with no EKU as good
		// for any use; ServerTLS's VerifyConnection must refuse it.
		c, k := issueNoEKU(t, ca, "mallory", now)
		r := handshake(t, srv, clientConfigFrom(t, c, k, ca.CertPEM()))
		if r.serverErr == nil || !strings.Contains(r.serverErr.Error(), "not a client certificate") || r.clientErr == nil {
			t.Errorf("accepted: server %v, client %v", r.serverErr, r.clientErr)
		}
	})
	t.Run("no client cert", func(t *testing.T) {
		cli := clientConfigFrom(t, goodCert, goodKey, ca.CertPEM())
		cli.Certificates = nil
		r := handshake(t, srv, cli)
		if r.serverErr == nil || r.clientErr == nil {
			t.Errorf("accepted: server %v, client %v", r.serverErr, r.clientErr)
		}
	})
	t.Run("server from a foreign CA", func(t *testing.T) {
		fc, fk := issue(t, foreign, "coord", RoleServer, []string{"localhost"}, now, year)
		fsrv, err := ServerTLS(fc, fk, foreign.CertPEM())
		if err != nil {
			t.Fatal(err)
		}
		cli, _ := ClientTLS(goodCert, goodKey, ca.CertPEM(), "localhost")
		r := handshake(t, fsrv, cli)
		var unknown x509.UnknownAuthorityError
		if r.clientErr == nil || !errors.As(r.clientErr, &unknown) {
			t.Errorf("client err = %v, want an unknown-authority error", r.clientErr)
		}
	})
	t.Run("server name not in SANs", func(t *testing.T) {
		cli, _ := ClientTLS(goodCert, goodKey, ca.CertPEM(), "elsewhere.example.org")
		r := handshake(t, srv, cli)
		if r.clientErr == nil {
			t.Error("client accepted a server certificate for another host")
		}
	})
	t.Run("TLS 1.2 client", func(t *testing.T) {
		cli, _ := ClientTLS(goodCert, goodKey, ca.CertPEM(), "localhost")
		cli.MinVersion, cli.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
		r := handshake(t, srv, cli)
		if r.serverErr == nil || r.clientErr == nil {
			t.Errorf("accepted TLS 1.2: server %v, client %v", r.serverErr, r.clientErr)
		}
	})
}

func TestTLSConfigInputs(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "fed", now)
	foreign := newTestCA(t, "fed", now)
	srvCert, srvKey := issue(t, ca, "coord", RoleServer, []string{"localhost"}, now, year)
	cliCert, cliKey := issue(t, ca, "alice", RoleClient, nil, now, year)
	_, otherKey := issue(t, ca, "bob", RoleClient, nil, now, year)
	fCert, fKey := issue(t, foreign, "coord", RoleServer, []string{"localhost"}, now, year)

	if _, err := ServerTLS(cliCert, cliKey, ca.CertPEM()); err == nil || !strings.Contains(err.Error(), "not a server certificate") {
		t.Errorf("ServerTLS with a client certificate: %v", err)
	}
	if _, err := ServerTLS(srvCert, otherKey, ca.CertPEM()); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("ServerTLS with another key: %v", err)
	}
	if _, err := ServerTLS(fCert, fKey, ca.CertPEM()); err == nil || !strings.Contains(err.Error(), "not issued by") {
		t.Errorf("ServerTLS with a foreign certificate: %v", err)
	}
	if _, err := ServerTLS(srvCert, srvKey, srvCert); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("ServerTLS with a leaf as CA: %v", err)
	}
	if _, err := ClientTLS(cliCert, otherKey, ca.CertPEM(), "localhost"); err == nil {
		t.Error("ClientTLS with another key accepted")
	}
	cli, err := ClientTLS(cliCert, cliKey, ca.CertPEM(), "")
	if err != nil {
		t.Fatal(err)
	}
	if cli.RootCAs == nil || cli.MinVersion != tls.VersionTLS13 || cli.InsecureSkipVerify {
		t.Errorf("client config: RootCAs %v MinVersion %x InsecureSkipVerify %v", cli.RootCAs, cli.MinVersion, cli.InsecureSkipVerify)
	}
	if _, err := ClientName(tls.ConnectionState{}); err == nil {
		t.Error("ClientName of an unauthenticated connection returned no error")
	}
}

// issueNoEKU issues a leaf certificate without any ExtKeyUsage, which
// Authority.Issue never does.
func issueNoEKU(t *testing.T, ca *Authority, name string, now time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := randomSerial()
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	keyPEM, err = marshalEd25519Key(priv)
	if err != nil {
		t.Fatal(err)
	}
	return encodeCertPEM(cert), keyPEM
}
