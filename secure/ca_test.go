package secure

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"a", "alice", "client-01", "Node_7.eu", strings.Repeat("x", 64), "..a", "-"} {
		if err := CheckName(ok); err != nil {
			t.Errorf("CheckName(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", strings.Repeat("x", 65), "a b", "a/b", "a:b", "ä", "a\x00", "a\n", "CN=x,O=y"} {
		if err := CheckName(bad); err == nil {
			t.Errorf("CheckName(%q) = nil, want an error", bad)
		}
	}
}

func TestAuthorityRoundTrip(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "fed", now)
	if got := ca.Cert.Subject.CommonName; got != "fed CA" {
		t.Errorf("CA CN = %q, want %q", got, "fed CA")
	}
	if !ca.Cert.IsCA || !ca.Cert.MaxPathLenZero || ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA certificate constraints: IsCA %v MaxPathLenZero %v KeyUsage %v", ca.Cert.IsCA, ca.Cert.MaxPathLenZero, ca.Cert.KeyUsage)
	}
	keyPEM, err := ca.KeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseAuthority(ca.CertPEM(), keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Cert.Equal(ca.Cert) || !back.Key.Equal(ca.Key) {
		t.Error("ParseAuthority did not give back the same CA")
	}

	other := newTestCA(t, "other", now)
	otherKey, _ := other.KeyPEM()
	if _, err := ParseAuthority(ca.CertPEM(), otherKey); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("CA with another CA's key: err = %v, want a mismatch error", err)
	}
	leaf, leafKey := issue(t, ca, "srv", RoleServer, []string{"localhost"}, now, year)
	if _, err := ParseAuthority(leaf, leafKey); err == nil || !strings.Contains(err.Error(), "not a CA") {
		t.Errorf("leaf as CA: err = %v, want a not-a-CA error", err)
	}
	if _, err := NewAuthority("bad name", now, year); err == nil {
		t.Error("NewAuthority accepted a name with a space")
	}
	if _, err := NewAuthority("fed", now, 0); err == nil {
		t.Error("NewAuthority accepted a zero validity")
	}
}

func TestIssueServer(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "fed", now)
	certPEM, keyPEM := issue(t, ca, "coord", RoleServer, []string{"localhost", "127.0.0.1", "::1", "fed.example.org", "*.nodes.example.org"}, now, year)
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "coord" {
		t.Errorf("CN = %q", cert.Subject.CommonName)
	}
	if got := strings.Join(cert.DNSNames, ","); got != "localhost,fed.example.org,*.nodes.example.org" {
		t.Errorf("DNS SANs = %s", got)
	}
	if len(cert.IPAddresses) != 2 || !cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || !cert.IPAddresses[1].Equal(net.IPv6loopback) {
		t.Errorf("IP SANs = %v", cert.IPAddresses)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || cert.IsCA {
		t.Errorf("EKU = %v, IsCA = %v", cert.ExtKeyUsage, cert.IsCA)
	}
	if err := cert.CheckSignatureFrom(ca.Cert); err != nil {
		t.Error(err)
	}
	key, err := ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Public().(ed25519.PublicKey).Equal(cert.PublicKey) {
		t.Error("key does not match certificate")
	}
	if cert.NotAfter.Sub(now) > year || year-cert.NotAfter.Sub(now) > time.Second {
		t.Errorf("NotAfter %v, want now+1y", cert.NotAfter)
	}
	if now.Sub(cert.NotBefore) < time.Minute {
		t.Errorf("NotBefore %v is not backdated for clock skew", cert.NotBefore)
	}

	for _, hosts := range [][]string{nil, {"bad host"}, {"a..b"}, {"-a.com"}, {""}, {"a/b"}} {
		if _, _, err := ca.Issue("coord", RoleServer, hosts, now, year); err == nil {
			t.Errorf("Issue server with hosts %q: no error", hosts)
		}
	}
}

func TestIssueClient(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "fed", now)
	certPEM, _ := issue(t, ca, "alice", RoleClient, nil, now, year)
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("EKU = %v", cert.ExtKeyUsage)
	}
	if len(cert.URIs) != 1 || cert.URIs[0].String() != "kronfed:client:alice" {
		t.Errorf("URI SANs = %v", cert.URIs)
	}
	if len(cert.DNSNames)+len(cert.IPAddresses) != 0 {
		t.Errorf("client certificate has host SANs %v %v", cert.DNSNames, cert.IPAddresses)
	}
	if IsOperator(cert) {
		t.Error("a client certificate counts as an operator's")
	}
	opPEM, _ := issue(t, ca, "ops", RoleOperator, nil, now, year)
	op, err := ParseCertificate(opPEM)
	if err != nil {
		t.Fatal(err)
	}
	if name, err := checkClientLeaf(op); err != nil || name != "ops" || !IsOperator(op) {
		t.Errorf("operator certificate: name %q, %v, operator %v (URIs %v)", name, err, IsOperator(op), op.URIs)
	}
	// A client certificate whose CN claims another name's operator URI is
	// not an operator's: the URI must name its own CN.
	op.Subject.CommonName = "mallory"
	if IsOperator(op) {
		t.Error("operator URI of another name accepted")
	}

	cases := []struct {
		name     string
		role     Role
		hosts    []string
		validity time.Duration
		want     string
	}{
		{"", RoleClient, nil, year, "empty"},
		{"a b", RoleClient, nil, year, "not allowed"},
		{strings.Repeat("n", 65), RoleClient, nil, year, "longer than 64"},
		{"alice", RoleClient, []string{"localhost"}, year, "no hosts"},
		{"alice", Role(0), nil, year, "unknown role"},
		{"alice", Role(9), nil, year, "unknown role"},
		{"alice", RoleClient, nil, 0, "not positive"},
		{"alice", RoleClient, nil, 11 * year, "after the CA"},
	}
	for _, c := range cases {
		_, _, err := ca.Issue(c.name, c.role, c.hosts, now, c.validity)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Issue(%.10q, %v, %v, %v): err = %v, want %q", c.name, c.role, c.hosts, c.validity, err, c.want)
		}
	}
	var nilCA *Authority
	if _, _, err := nilCA.Issue("alice", RoleClient, nil, now, year); err == nil {
		t.Error("nil authority issued a certificate")
	}
}

func TestVerifyClientCert(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "fed", now.Add(-3*year))
	foreign := newTestCA(t, "fed", now)
	parse := func(p []byte) *x509.Certificate {
		c, err := ParseCertificate(p)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good, _ := issue(t, ca, "alice", RoleClient, nil, now, year)
	name, err := VerifyClientCert(ca.CertPEM(), parse(good), now)
	if err != nil || name != "alice" {
		t.Fatalf("VerifyClientCert = %q, %v; want alice", name, err)
	}
	if _, err := VerifyClientCert(ca.CertPEM(), parse(good), time.Time{}); err != nil {
		t.Errorf("VerifyClientCert at zero time (now): %v", err)
	}

	foreignCert, _ := issue(t, foreign, "alice", RoleClient, nil, now, year)
	expired, _ := issue(t, ca, "alice", RoleClient, nil, now.Add(-2*year), year)
	server, _ := issue(t, ca, "alice", RoleServer, []string{"localhost"}, now, year)
	for _, c := range []struct {
		what string
		cert []byte
		at   time.Time
	}{
		{"foreign CA", foreignCert, now},
		{"expired", expired, now},
		{"not yet valid", good, now.Add(-time.Hour)},
		{"after expiry", good, now.Add(year + time.Hour)},
		{"server certificate", server, now},
	} {
		if _, err := VerifyClientCert(ca.CertPEM(), parse(c.cert), c.at); err == nil {
			t.Errorf("%s: VerifyClientCert accepted it", c.what)
		}
	}
	if _, err := VerifyClientCert(ca.CertPEM(), nil, now); err == nil {
		t.Error("nil certificate accepted")
	}
	if _, err := VerifyClientCert(good, parse(good), now); err == nil {
		t.Error("a leaf certificate was accepted as the CA")
	}
}

func TestSignWithKeyVerifyWithCert(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "fed", now)
	certPEM, keyPEM := issue(t, ca, "alice", RoleClient, nil, now, year)
	otherPEM, _ := issue(t, ca, "bob", RoleClient, nil, now, year)
	cert, _ := ParseCertificate(certPEM)
	other, _ := ParseCertificate(otherPEM)
	key, err := ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("kronfed/upload/v1 round 3")
	sig, err := SignWithKey(key, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyWithCert(cert, msg, sig); err != nil {
		t.Fatalf("VerifyWithCert: %v", err)
	}
	// fed verifies upload signatures with plain crypto/ed25519; keep them
	// interoperable.
	if !ed25519.Verify(cert.PublicKey.(ed25519.PublicKey), msg, sig) {
		t.Error("signature is not plain Ed25519 over the message")
	}
	tampered := bytes.Clone(msg)
	tampered[0] ^= 1
	badSig := bytes.Clone(sig)
	badSig[10] ^= 0x80
	for _, c := range []struct {
		what     string
		cert     *x509.Certificate
		msg, sig []byte
	}{
		{"tampered message", cert, tampered, sig},
		{"tampered signature", cert, msg, badSig},
		{"other client's certificate", other, msg, sig},
		{"short signature", cert, msg, sig[:63]},
		{"empty signature", cert, msg, nil},
	} {
		err := VerifyWithCert(c.cert, c.msg, c.sig)
		if !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: err = %v, want ErrBadSignature", c.what, err)
		}
	}
	if err := VerifyWithCert(nil, msg, sig); err == nil {
		t.Error("nil certificate accepted")
	}

	tlsLike := append(bytes.Repeat([]byte(" "), 64), "TLS 1.3, client CertificateVerify\x00"...)
	if _, err := SignWithKey(key, tlsLike); err == nil {
		t.Error("SignWithKey signed TLS 1.3 CertificateVerify content")
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := SignWithKey(ec, msg); err == nil {
		t.Error("SignWithKey accepted an ECDSA key")
	}
	if _, err := SignWithKey(nil, msg); err == nil {
		t.Error("SignWithKey accepted a nil key")
	}
}

func TestPEMParsing(t *testing.T) {
	now := time.Now()
	ca := newTestCA(t, "fed", now)
	certPEM, keyPEM := issue(t, ca, "alice", RoleClient, nil, now, year)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})
	withHeader := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED"}, Bytes: []byte{1}})

	if _, err := ParseCertificate(append([]byte("Subject: alice\n"), certPEM...)); err != nil {
		t.Errorf("text before the PEM block: %v", err)
	}
	if _, err := ParseCertificate(append(bytes.Clone(certPEM), "\n\n"...)); err != nil {
		t.Errorf("white space after the PEM block: %v", err)
	}
	for _, c := range []struct {
		what string
		data []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"not PEM", []byte("hello"), "no PEM block"},
		{"key as certificate", keyPEM, "want \"CERTIFICATE\""},
		{"two certificates", append(bytes.Clone(certPEM), certPEM...), "after"},
		{"trailing garbage", append(bytes.Clone(certPEM), "junk"...), "after"},
		{"PEM headers", withHeader, "headers"},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 1, 2}}), "parse certificate"},
	} {
		if _, err := ParseCertificate(c.data); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseCertificate(%s): err = %v, want %q", c.what, err, c.want)
		}
	}
	for _, c := range []struct {
		what string
		data []byte
		want string
	}{
		{"certificate as key", certPEM, "want \"PRIVATE KEY\""},
		{"ECDSA key", ecPEM, "not an Ed25519 key"},
		{"bad DER", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "parse private key"},
	} {
		if _, err := ParsePrivateKey(c.data); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParsePrivateKey(%s): err = %v, want %q", c.what, err, c.want)
		}
	}
}
