package secure

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"
)

// MaxNameLen is the longest coordinator or client name, in bytes.
const MaxNameLen = 64

// clockSkew backdates every certificate's NotBefore, so that a peer whose
// clock runs a little behind the issuer's still accepts a fresh
// certificate.
const clockSkew = 5 * time.Minute

// clientURIPrefix starts the URI SAN of client certificates. The CN is what
// kronfed reads; the URI marks the certificate as a kronfed client's for
// anyone inspecting it with other tools.
const clientURIPrefix = "kronfed:client:"

// Role says what a leaf certificate is for.
type Role int

const (
	// RoleServer certificates authenticate the coordinator
	// (ExtKeyUsageServerAuth, SANs from the hosts).
	RoleServer Role = iota + 1
	// RoleClient certificates authenticate a client (ExtKeyUsageClientAuth);
	// the CN is the client's name.
	RoleClient
	// RoleOperator certificates authenticate an operator: a client
	// certificate (ExtKeyUsageClientAuth) whose URI SAN is
	// "kronfed:operator:<name>". Operators see the coordinator's full
	// status (members, cohorts, who uploaded); clients see only what they
	// need to train. Only the CA's holder issues them.
	RoleOperator
)

// operatorURIPrefix starts the URI SAN of operator certificates.
const operatorURIPrefix = "kronfed:operator:"

// IsOperator reports whether cert (a verified client certificate) is an
// operator's: its URI SAN is "kronfed:operator:<its CN>".
func IsOperator(cert *x509.Certificate) bool {
	if cert == nil {
		return false
	}
	for _, u := range cert.URIs {
		if u.String() == operatorURIPrefix+cert.Subject.CommonName {
			return true
		}
	}
	return false
}

func (r Role) String() string {
	switch r {
	case RoleServer:
		return "server"
	case RoleClient:
		return "client"
	case RoleOperator:
		return "operator"
	}
	return fmt.Sprintf("Role(%d)", int(r))
}

// CheckName reports whether name is a valid coordinator or client name:
// 1 to 64 bytes of ASCII letters, digits, '.', '_' and '-', and not "." or
// "..". Names become certificate CNs, log fields, gossip member names and
// often file names, so the alphabet is kept to what is safe in all of them.
func CheckName(name string) error {
	if name == "" {
		return errors.New("name is empty")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("name %.20q... is %d bytes, longer than %d", name, len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("name %q: byte %q at %d is not allowed (use letters, digits, '.', '_', '-')", name, c, i)
		}
	}
	if name == "." || name == ".." {
		return fmt.Errorf("name %q is not allowed", name)
	}
	return nil
}

// checkHostname accepts DNS names made of labels of letters, digits and
// '-' (1 to 63 bytes each, not starting or ending with '-'), at most 253
// bytes, with an optional leading "*." wildcard.
func checkHostname(h string) error {
	name := strings.TrimPrefix(h, "*.")
	if name == "" || len(h) > 253 {
		return fmt.Errorf("host %q is not a valid DNS name or IP address", h)
	}
	for _, label := range strings.Split(name, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host %q is not a valid DNS name or IP address", h)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("host %q is not a valid DNS name or IP address", h)
			}
		}
	}
	return nil
}

func orNow(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

func randomSerial() (*big.Int, error) {
	// 128 random bits: serials must be unique per CA, and unpredictable
	// serials are the standard defence against chosen-prefix collisions.
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil // never 0
}

// Authority is the federation's certificate authority: an Ed25519 key and a
// self-signed X.509 CA certificate with CN "<name> CA". It issues the
// coordinator's and the clients' TLS certificates.
type Authority struct {
	Cert *x509.Certificate
	Key  ed25519.PrivateKey
}

// NewAuthority creates a CA named name, valid from now (a zero now means
// time.Now()) for validity. The CA may sign only leaf certificates
// (MaxPathLen 0): the federation has no intermediates.
func NewAuthority(name string, now time.Time, validity time.Duration) (*Authority, error) {
	if err := CheckName(name); err != nil {
		return nil, fmt.Errorf("new authority: %w", err)
	}
	if validity <= 0 {
		return nil, fmt.Errorf("new authority: validity %v is not positive", validity)
	}
	now = orNow(now)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new authority: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, fmt.Errorf("new authority: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name + " CA"},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("new authority: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("new authority: %w", err)
	}
	return &Authority{Cert: cert, Key: priv}, nil
}

// ParseAuthority loads a CA from its certificate and PKCS#8 key PEMs,
// checking that the certificate is a self-signed CA certificate and that the
// key is its own.
func ParseAuthority(certPEM, keyPEM []byte) (*Authority, error) {
	cert, err := parseCACert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("parse authority: %w", err)
	}
	key, err := parseEd25519Key(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("parse authority: %w", err)
	}
	if err := keyMatchesCert(key, cert); err != nil {
		return nil, fmt.Errorf("parse authority: CA %w", err)
	}
	return &Authority{Cert: cert, Key: key}, nil
}

// parseCACert parses a self-signed Ed25519 CA certificate.
func parseCACert(caPEM []byte) (*x509.Certificate, error) {
	cert, err := ParseCertificate(caPEM)
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return nil, fmt.Errorf("CA: certificate %q is not a CA certificate", cert.Subject.CommonName)
	}
	if _, ok := cert.PublicKey.(ed25519.PublicKey); !ok {
		return nil, fmt.Errorf("CA: certificate key is %T, want Ed25519", cert.PublicKey)
	}
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return nil, fmt.Errorf("CA: certificate %q is not self-signed: %w", cert.Subject.CommonName, err)
	}
	return cert, nil
}

// caPool returns a pool holding only the CA in caPEM.
func caPool(caPEM []byte) (*x509.CertPool, *x509.Certificate, error) {
	ca, err := parseCACert(caPEM)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return pool, ca, nil
}

// CertPEM returns the CA certificate in PEM form.
func (a *Authority) CertPEM() []byte { return encodeCertPEM(a.Cert) }

// KeyPEM returns the CA's private key as a PKCS#8 PEM block.
func (a *Authority) KeyPEM() ([]byte, error) { return marshalEd25519Key(a.Key) }

// Issue makes an Ed25519 leaf certificate signed by the CA and returns it
// with its new private key (PKCS#8), both PEM-encoded.
//
// A RoleServer certificate has CN name, ExtKeyUsageServerAuth and one SAN
// per host (IP addresses and DNS names; at least one is needed, because
// clients verify the host they dial against the SANs). A RoleClient
// certificate has CN name, ExtKeyUsageClientAuth and the URI SAN
// "kronfed:client:<name>"; it takes no hosts. The certificate is valid from
// now (zero means time.Now(), backdated by five minutes for clock skew) for
// validity, which must end before the CA expires.
func (a *Authority) Issue(name string, role Role, hosts []string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, err error) {
	if a == nil || a.Cert == nil || len(a.Key) != ed25519.PrivateKeySize {
		return nil, nil, errors.New("issue: authority has no certificate or key")
	}
	if err := CheckName(name); err != nil {
		return nil, nil, fmt.Errorf("issue %s certificate: %w", role, err)
	}
	if validity <= 0 {
		return nil, nil, fmt.Errorf("issue %s certificate %q: validity %v is not positive", role, name, validity)
	}
	now = orNow(now)
	notAfter := now.Add(validity)
	if notAfter.After(a.Cert.NotAfter) {
		return nil, nil, fmt.Errorf("issue %s certificate %q: it would expire %s, after the CA (%s); renew the CA or shorten the validity",
			role, name, notAfter.UTC().Format(time.RFC3339), a.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s certificate %q: %w", role, name, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	switch role {
	case RoleServer:
		if len(hosts) == 0 {
			return nil, nil, fmt.Errorf("issue server certificate %q: no hosts (give the DNS names and IPs clients dial)", name)
		}
		for _, h := range hosts {
			if ip := net.ParseIP(h); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
				continue
			}
			if err := checkHostname(h); err != nil {
				return nil, nil, fmt.Errorf("issue server certificate %q: %w", name, err)
			}
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case RoleClient, RoleOperator:
		if len(hosts) != 0 {
			return nil, nil, fmt.Errorf("issue %s certificate %q: %s certificates take no hosts", role, name, role)
		}
		prefix := clientURIPrefix
		if role == RoleOperator {
			prefix = operatorURIPrefix
		}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		tmpl.URIs = []*url.URL{{Scheme: "kronfed", Opaque: strings.TrimPrefix(prefix, "kronfed:") + name}}
	default:
		return nil, nil, fmt.Errorf("issue certificate %q: unknown role %v", name, role)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s certificate %q: %w", role, name, err)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, pub, a.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s certificate %q: %w", role, name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s certificate %q: %w", role, name, err)
	}
	keyPEM, err = marshalEd25519Key(priv)
	if err != nil {
		return nil, nil, fmt.Errorf("issue %s certificate %q: %w", role, name, err)
	}
	return encodeCertPEM(cert), keyPEM, nil
}

// checkClientLeaf checks what kronfed requires of a client certificate
// beyond a valid chain: an explicit ExtKeyUsageClientAuth (Go's chain
// verification also accepts certificates with no EKU or with "any", which
// the CA never issues to clients) and a valid name as CN. It returns the CN.
func checkClientLeaf(cert *x509.Certificate) (string, error) {
	if !hasExtKeyUsage(cert, x509.ExtKeyUsageClientAuth) {
		return "", fmt.Errorf("certificate %q is not a client certificate (no ExtKeyUsageClientAuth)", cert.Subject.CommonName)
	}
	name := cert.Subject.CommonName
	if err := CheckName(name); err != nil {
		return "", fmt.Errorf("client certificate CN: %w", err)
	}
	return name, nil
}

// VerifyClientCert checks that cert is a client certificate issued by the
// CA in caPEM and valid at now (zero means time.Now()), and returns the
// client's name (its CN).
func VerifyClientCert(caPEM []byte, cert *x509.Certificate, now time.Time) (name string, err error) {
	if cert == nil {
		return "", errors.New("verify client certificate: no certificate")
	}
	pool, _, err := caPool(caPEM)
	if err != nil {
		return "", fmt.Errorf("verify client certificate: %w", err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots:       pool,
		CurrentTime: orNow(now),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return "", fmt.Errorf("verify client certificate %q: %w", cert.Subject.CommonName, err)
	}
	name, err = checkClientLeaf(cert)
	if err != nil {
		return "", fmt.Errorf("verify client certificate: %w", err)
	}
	return name, nil
}

// tls13SignaturePrefix is how every TLS 1.3 CertificateVerify signed
// content starts (RFC 8446, section 4.4.3): 64 spaces.
var tls13SignaturePrefix = bytes.Repeat([]byte{0x20}, 64)

// SignWithKey signs msg with an Ed25519 key (pure Ed25519, no pre-hash).
// Clients sign uploads with their TLS key, so that the coordinator verifies
// them with the certificate it issued ([VerifyWithCert]) and no extra key
// needs distributing.
//
// Reusing the TLS key is safe because TLS 1.3 signs only contents that
// start with 64 spaces; SignWithKey refuses such messages, so no signature
// it makes can be replayed as a TLS handshake signature. Callers should
// still start msg with a domain-separation label of their own (fed uses
// "kronfed/upload/v1").
func SignWithKey(key crypto.Signer, msg []byte) ([]byte, error) {
	if key == nil {
		return nil, errors.New("sign: no key")
	}
	if _, ok := key.Public().(ed25519.PublicKey); !ok {
		return nil, fmt.Errorf("sign: key is %T, want Ed25519", key.Public())
	}
	if bytes.HasPrefix(msg, tls13SignaturePrefix) {
		return nil, errors.New("sign: message looks like TLS 1.3 signed content (64 leading spaces); refusing to sign it with a TLS key")
	}
	sig, err := key.Sign(rand.Reader, msg, crypto.Hash(0))
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	return sig, nil
}

// VerifyWithCert checks an Ed25519 signature made by [SignWithKey] against
// the public key in cert. It does not check the certificate itself: verify
// it first with [VerifyClientCert], or take it from a TLS connection's
// verified chains. A signature that does not verify returns an error
// wrapping [ErrBadSignature].
func VerifyWithCert(cert *x509.Certificate, msg, sig []byte) error {
	if cert == nil {
		return errors.New("verify signature: no certificate")
	}
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return fmt.Errorf("verify signature: certificate %q key is %T, want Ed25519", cert.Subject.CommonName, cert.PublicKey)
	}
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
		return fmt.Errorf("Ed25519 key of certificate %q: %w", cert.Subject.CommonName, ErrBadSignature)
	}
	return nil
}
