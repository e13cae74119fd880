package secure

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"filippo.io/age"
)

// Bundle format identification.
const (
	BundleFormat  = "kronfed-client-bundle"
	BundleVersion = 1
)

// maxBundle bounds a bundle file; a real one is a few KiB (ML-DSA keys
// make it about 6 KiB).
const maxBundle = 1 << 20

// maxAddress bounds the coordinator address hint.
const maxAddress = 512

// Bundle is everything a client needs to join a federation, issued by
// [Coordinator.Enroll]. It holds the client's private key: keep it secret.
//
// On disk ([Bundle.Marshal]) it is one JSON object:
//
//	{
//	  "format": "kronfed-client-bundle",
//	  "version": 1,
//	  "name": "<client name, the certificate's CN>",
//	  "coordinator": "<host:port hint, optional>",
//	  "certificate": "<client certificate PEM>",
//	  "key": "<client private key, PKCS#8 PEM>",
//	  "ca": "<CA certificate PEM>",
//	  "coordinator_recipient": "<age recipient, age1pq1... or age1...>",
//	  "coordinator_verifier": "<kronfed-verify-key:<scheme>:<base64>>",
//	  "cluster_key": "<32 bytes, base64>"
//	}
type Bundle struct {
	Name            string
	CertPEM, KeyPEM []byte
	CAPEM           []byte
	Recipient       string // coordinator's age recipient
	Verifier        string // coordinator's verification key text
	ClusterKey      []byte // gossip keyring secret
	Coordinator     string // address hint; may be empty
}

type bundleJSON struct {
	Format      string `json:"format"`
	Version     int    `json:"version"`
	Name        string `json:"name"`
	Coordinator string `json:"coordinator,omitempty"`
	Certificate string `json:"certificate"`
	Key         string `json:"key"`
	CA          string `json:"ca"`
	Recipient   string `json:"coordinator_recipient"`
	Verifier    string `json:"coordinator_verifier"`
	ClusterKey  []byte `json:"cluster_key"`
}

// Marshal encodes a valid bundle (see [ParseBundle] for what is checked) as
// indented JSON.
func (b *Bundle) Marshal() ([]byte, error) {
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("marshal bundle: %w", err)
	}
	data, err := json.MarshalIndent(bundleJSON{
		Format:      BundleFormat,
		Version:     BundleVersion,
		Name:        b.Name,
		Coordinator: b.Coordinator,
		Certificate: string(b.CertPEM),
		Key:         string(b.KeyPEM),
		CA:          string(b.CAPEM),
		Recipient:   b.Recipient,
		Verifier:    b.Verifier,
		ClusterKey:  b.ClusterKey,
	}, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("marshal bundle: %w", err)
	}
	return append(data, '\n'), nil
}

// ParseBundle decodes and validates a bundle: the format and version, the
// name, that the certificate is a client certificate for that name issued
// by the bundle's CA and matching the key, and that the recipient, the
// verifier and the cluster key parse. Unknown fields are refused (a
// misspelt field is a mistake, and new fields come with a new version).
// Expiry is not checked here; the TLS handshake reports it. Errors name
// the field at fault and never quote secrets.
func ParseBundle(data []byte) (*Bundle, error) {
	if len(data) > maxBundle {
		return nil, fmt.Errorf("parse bundle: %d bytes is larger than %d; not a bundle", len(data), maxBundle)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var j bundleJSON
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("parse bundle: not a kronfed client bundle (JSON): %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("parse bundle: unexpected data after the JSON object")
	}
	if j.Format != BundleFormat {
		return nil, fmt.Errorf("parse bundle: field \"format\" is %.40q, want %q", j.Format, BundleFormat)
	}
	if j.Version != BundleVersion {
		return nil, fmt.Errorf("parse bundle: field \"version\" is %d; this program reads version %d", j.Version, BundleVersion)
	}
	b := &Bundle{
		Name:        j.Name,
		CertPEM:     []byte(j.Certificate),
		KeyPEM:      []byte(j.Key),
		CAPEM:       []byte(j.CA),
		Recipient:   j.Recipient,
		Verifier:    j.Verifier,
		ClusterKey:  j.ClusterKey,
		Coordinator: j.Coordinator,
	}
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("parse bundle: %w", err)
	}
	return b, nil
}

// validate checks the fields of b, naming the JSON field at fault.
func (b *Bundle) validate() error {
	if err := CheckName(b.Name); err != nil {
		return fmt.Errorf("field \"name\": %w", err)
	}
	_, ca, err := caPool(b.CAPEM)
	if err != nil {
		return fmt.Errorf("field \"ca\": %w", err)
	}
	cert, err := ParseCertificate(b.CertPEM)
	if err != nil {
		return fmt.Errorf("field \"certificate\": %w", err)
	}
	key, err := parseEd25519Key(b.KeyPEM)
	if err != nil {
		return fmt.Errorf("field \"key\": %w", err)
	}
	if err := keyMatchesCert(key, cert); err != nil {
		return fmt.Errorf("fields \"key\" and \"certificate\": %w", err)
	}
	cn, err := checkClientLeaf(cert)
	if err != nil {
		return fmt.Errorf("field \"certificate\": %w", err)
	}
	if cn != b.Name {
		return fmt.Errorf("field \"certificate\": issued to %q, but the bundle is named %q", cn, b.Name)
	}
	if err := cert.CheckSignatureFrom(ca); err != nil {
		return fmt.Errorf("field \"certificate\": not issued by the bundle's CA %q: %w", ca.Subject.CommonName, err)
	}
	if strings.TrimSpace(b.Recipient) != b.Recipient || strings.Contains(b.Recipient, "\n") {
		return errors.New("field \"coordinator_recipient\": want a single age recipient without white space")
	}
	if _, err := ParseRecipient(b.Recipient); err != nil {
		return fmt.Errorf("field \"coordinator_recipient\": %w", err)
	}
	if _, err := ParseVerifier([]byte(b.Verifier)); err != nil {
		return fmt.Errorf("field \"coordinator_verifier\": %w", err)
	}
	if len(b.ClusterKey) != ClusterKeySize {
		return fmt.Errorf("field \"cluster_key\": %d bytes, want %d", len(b.ClusterKey), ClusterKeySize)
	}
	if len(b.Coordinator) > maxAddress || strings.IndexFunc(b.Coordinator, func(r rune) bool {
		return unicode.IsSpace(r) || !unicode.IsPrint(r)
	}) >= 0 {
		return fmt.Errorf("field \"coordinator\": %.60q is not a host:port address", b.Coordinator)
	}
	return nil
}

// ReadBundle reads and validates a bundle file. Like ssh with its keys, it
// refuses a file that group or others may access, since it holds the
// client's private key.
func ReadBundle(path string) (*Bundle, error) {
	data, err := readMaterial(path, true)
	if err != nil {
		return nil, fmt.Errorf("read bundle: %w", err)
	}
	b, err := ParseBundle(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// WriteFile writes the bundle to path with permissions 0600, replacing the
// file atomically if it exists.
func (b *Bundle) WriteFile(path string) (err error) {
	data, err := b.Marshal()
	if err != nil {
		return fmt.Errorf("write bundle %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*") // created 0600
	if err != nil {
		return fmt.Errorf("write bundle %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil && !errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("write bundle %s: %w", path, err)
	}
	if _, err = tmp.Write(data); err != nil {
		return fmt.Errorf("write bundle %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("write bundle %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("write bundle %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write bundle %s: %w", path, err)
	}
	return nil
}

// ClientTLS returns the client's mutual TLS 1.3 configuration (see
// [ClientTLS]).
func (b *Bundle) ClientTLS(serverName string) (*tls.Config, error) {
	return ClientTLS(b.CertPEM, b.KeyPEM, b.CAPEM, serverName)
}

// Key returns the client's private key, which signs its uploads.
func (b *Bundle) Key() (crypto.Signer, error) { return ParsePrivateKey(b.KeyPEM) }

// Certificate returns the client's certificate.
func (b *Bundle) Certificate() (*x509.Certificate, error) { return ParseCertificate(b.CertPEM) }

// CoordinatorRecipient returns the age recipient uploads are encrypted to.
func (b *Bundle) CoordinatorRecipient() (age.Recipient, error) { return ParseRecipient(b.Recipient) }

// CoordinatorVerifier returns the verifier of the coordinator's broadcasts.
func (b *Bundle) CoordinatorVerifier() (*Verifier, error) { return ParseVerifier([]byte(b.Verifier)) }
