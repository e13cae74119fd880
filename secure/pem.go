package secure

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
)

const (
	pemCertificate = "CERTIFICATE"
	pemPrivateKey  = "PRIVATE KEY"
)

// decodeOnePEM returns the DER bytes of the single PEM block of type typ in
// data. Text before the block is allowed (tools often print a description
// there); a second block or anything but white space after it is not, so a
// file holding two keys or two certificates is an error rather than a
// silent choice of the first.
func decodeOnePEM(data []byte, typ string) ([]byte, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		if len(bytes.TrimSpace(data)) == 0 {
			return nil, errors.New("empty input, want a PEM block")
		}
		return nil, fmt.Errorf("no PEM block found, want %q", typ)
	}
	if block.Type != typ {
		return nil, fmt.Errorf("PEM block is %q, want %q", block.Type, typ)
	}
	if len(block.Headers) != 0 {
		return nil, fmt.Errorf("%q PEM block has unexpected headers", typ)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("unexpected data after the %q PEM block", typ)
	}
	return block.Bytes, nil
}

// ParseCertificate parses a single PEM "CERTIFICATE" block.
func ParseCertificate(certPEM []byte) (*x509.Certificate, error) {
	der, err := decodeOnePEM(certPEM, pemCertificate)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	return cert, nil
}

// ParsePrivateKey parses an Ed25519 private key from a PKCS#8 PEM
// "PRIVATE KEY" block, the form [Authority.Issue] writes. Other key types
// are refused: every key in a federation is Ed25519, so anything else is a
// mistake.
func ParsePrivateKey(keyPEM []byte) (crypto.Signer, error) {
	k, err := parseEd25519Key(keyPEM)
	if err != nil {
		return nil, err
	}
	return k, nil
}

func parseEd25519Key(keyPEM []byte) (ed25519.PrivateKey, error) {
	der, err := decodeOnePEM(keyPEM, pemPrivateKey)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("parse private key: %w", err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("parse private key: %T is not an Ed25519 key", k)
	}
	return ek, nil
}

func marshalEd25519Key(k ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPrivateKey, Bytes: der}), nil
}

func encodeCertPEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: pemCertificate, Bytes: cert.Raw})
}

// keyMatchesCert reports an error unless key is the private half of the
// Ed25519 public key in cert.
func keyMatchesCert(key ed25519.PrivateKey, cert *x509.Certificate) error {
	pub, ok := cert.PublicKey.(ed25519.PublicKey)
	if !ok {
		return fmt.Errorf("certificate key is %T, want Ed25519", cert.PublicKey)
	}
	if !pub.Equal(key.Public()) {
		return errors.New("private key does not match the certificate")
	}
	return nil
}

func hasExtKeyUsage(cert *x509.Certificate, u x509.ExtKeyUsage) bool {
	return slices.Contains(cert.ExtKeyUsage, u)
}
