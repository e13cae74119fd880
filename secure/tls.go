package secure

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
)

// leafPair parses a leaf certificate and its key, checks that they match,
// that the certificate carries usage and that the CA issued it, and returns
// them as a tls.Certificate.
func leafPair(certPEM, keyPEM []byte, ca *x509.Certificate, usage x509.ExtKeyUsage) (tls.Certificate, error) {
	cert, err := ParseCertificate(certPEM)
	if err != nil {
		return tls.Certificate{}, err
	}
	key, err := parseEd25519Key(keyPEM)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := keyMatchesCert(key, cert); err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %q: %w", cert.Subject.CommonName, err)
	}
	if !hasExtKeyUsage(cert, usage) {
		want := "server"
		if usage == x509.ExtKeyUsageClientAuth {
			want = "client"
		}
		return tls.Certificate{}, fmt.Errorf("certificate %q is not a %s certificate", cert.Subject.CommonName, want)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %q was not issued by CA %q: %w", cert.Subject.CommonName, ca.Subject.CommonName, err)
	}
	return tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}, nil
}

// ServerTLS returns the coordinator's TLS configuration: TLS 1.3 only,
// serving certPEM/keyPEM, and requiring a client certificate issued by the
// CA in caPEM with ExtKeyUsageClientAuth and a valid name as CN (read it
// with [ClientName]).
//
// CurvePreferences stays nil on purpose: Go's defaults put the hybrid
// post-quantum X25519MLKEM768 key exchange first.
func ServerTLS(certPEM, keyPEM, caPEM []byte) (*tls.Config, error) {
	pool, ca, err := caPool(caPEM)
	if err != nil {
		return nil, fmt.Errorf("server TLS: %w", err)
	}
	pair, err := leafPair(certPEM, keyPEM, ca, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, fmt.Errorf("server TLS: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		// Go already verifies the chain for client-auth usage; this also
		// refuses certificates without an explicit ClientAuth EKU or with a
		// bad name, on fresh and resumed connections alike.
		VerifyConnection: func(cs tls.ConnectionState) error {
			_, err := ClientName(cs)
			return err
		},
	}, nil
}

// ClientTLS returns a client's TLS configuration: TLS 1.3 only, presenting
// certPEM/keyPEM, and trusting only the CA in caPEM (never the system
// roots). serverName is the name verified against the coordinator's
// certificate SANs; it may be empty when the dialer fills it in (gRPC uses
// the dialed host).
func ClientTLS(certPEM, keyPEM, caPEM []byte, serverName string) (*tls.Config, error) {
	pool, ca, err := caPool(caPEM)
	if err != nil {
		return nil, fmt.Errorf("client TLS: %w", err)
	}
	pair, err := leafPair(certPEM, keyPEM, ca, x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, fmt.Errorf("client TLS: %w", err)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		RootCAs:      pool,
		ServerName:   serverName,
	}, nil
}

// ClientName returns the name (CN) of the verified client certificate of a
// server-side connection. It fails when the peer presented no certificate,
// the certificate was not verified, or it is not a client certificate.
func ClientName(cs tls.ConnectionState) (string, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", errors.New("no verified client certificate")
	}
	return checkClientLeaf(cs.VerifiedChains[0][0])
}
