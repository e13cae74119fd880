package secure

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"filippo.io/age"
)

// Files of a coordinator folder made by [InitDir]. Secret files are
// created 0600 and refused by [LoadDir] if group or others may access them.
const (
	FileCACert        = "ca.pem"      // CA certificate (public)
	FileCAKey         = "ca.key"      // CA private key, PKCS#8 PEM (secret)
	FileServerCert    = "server.pem"  // coordinator TLS certificate (public)
	FileServerKey     = "server.key"  // its private key, PKCS#8 PEM (secret)
	FileAgeIdentity   = "age.key"     // age identity uploads are encrypted to (secret)
	FileAgeRecipient  = "age.pub"     // its recipient (public)
	FileSigningKey    = "sign.key"    // broadcast signing key, Signer text (secret)
	FileVerifyKey     = "sign.pub"    // its verification key, Verifier text (public)
	FileClusterSecret = "cluster.key" // gossip keyring secret, 32 bytes base64 (secret)
)

// ClusterKeySize is the size of the gossip keyring secret (an AES-256 key
// for memberlist).
const ClusterKeySize = 32

// year is the default certificate validity; the CA lives ten.
const year = 365 * 24 * time.Hour

// maxMaterialFile bounds every key or certificate file read, so that a
// wrong path (a model, a log) fails fast instead of being read whole.
const maxMaterialFile = 1 << 20

type dirFile struct {
	name   string
	secret bool
}

var dirFiles = []dirFile{
	{FileCACert, false}, {FileCAKey, true},
	{FileServerCert, false}, {FileServerKey, true},
	{FileAgeIdentity, true}, {FileAgeRecipient, false},
	{FileSigningKey, true}, {FileVerifyKey, false},
	{FileClusterSecret, true},
}

// InitOptions configures [InitDir]. Zero fields take the defaults.
type InitOptions struct {
	// Name is the coordinator's name: its certificate's CN, and the CA is
	// "<Name> CA". Default "coordinator".
	Name string
	// Hosts are the DNS names and IPs clients dial (the server certificate's
	// SANs). Default localhost, 127.0.0.1 and ::1.
	Hosts []string
	// AgeKind is the upload encryption key kind, AgeHybrid (default) or
	// AgeX25519.
	AgeKind string
	// SignScheme is the broadcast signature scheme, one of SignSchemes();
	// default Ed25519.
	SignScheme string
	// Validity of the server certificate; default one year. The CA is valid
	// for ten years, or Validity if longer.
	Validity time.Duration
	// Now is the issue time; default time.Now().
	Now time.Time
}

// InitDir creates dir (0700) and fills it with a new coordinator's
// material:
//
//	ca.pem       CA certificate
//	ca.key       CA private key (0600)
//	server.pem   coordinator TLS certificate, CN Name, SANs Hosts
//	server.key   its private key (0600)
//	age.key      age identity uploads are encrypted to (0600)
//	age.pub      its age recipient
//	sign.key     broadcast signing key (0600)
//	sign.pub     its verification key
//	cluster.key  32 random bytes, base64: the gossip keyring secret (0600)
//
// dir may exist (it is not re-permissioned then) but must hold none of
// these files: InitDir never overwrites key material. On failure it removes
// the files it wrote.
func InitDir(dir string, opts InitOptions) (err error) {
	if dir == "" {
		return errors.New("init coordinator folder: no folder given")
	}
	if opts.Name == "" {
		opts.Name = "coordinator"
	}
	if len(opts.Hosts) == 0 {
		opts.Hosts = []string{"localhost", "127.0.0.1", "::1"}
	}
	if opts.Validity == 0 {
		opts.Validity = year
	}
	if opts.Validity < 0 {
		return fmt.Errorf("init %s: validity %v is negative", dir, opts.Validity)
	}
	opts.Now = orNow(opts.Now)
	if err := CheckName(opts.Name); err != nil {
		return fmt.Errorf("init %s: coordinator %w", dir, err)
	}

	// Check the folder before generating anything.
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return fmt.Errorf("init %s: exists and is not a folder", dir)
	}
	for _, f := range dirFiles {
		p := filepath.Join(dir, f.name)
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("init %s: already initialized (%s exists); refusing to overwrite key material", dir, f.name)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("init %s: %w", dir, err)
		}
	}

	contents, err := newCoordinatorFiles(opts)
	if err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("init %s: %w", dir, err)
	}
	var written []string
	defer func() {
		if err != nil {
			for _, p := range written {
				os.Remove(p)
			}
		}
	}()
	for _, f := range dirFiles {
		p := filepath.Join(dir, f.name)
		perm := os.FileMode(0o644)
		if f.secret {
			perm = 0o600
		}
		if err := writeNew(p, contents[f.name], perm); err != nil {
			if !errors.Is(err, fs.ErrExist) {
				os.Remove(p)
			}
			return fmt.Errorf("init %s: %w", dir, err)
		}
		written = append(written, p)
	}
	return nil
}

// newCoordinatorFiles generates the contents of every file of a
// coordinator folder.
func newCoordinatorFiles(opts InitOptions) (map[string][]byte, error) {
	caValidity := max(10*year, opts.Validity)
	ca, err := NewAuthority(opts.Name, opts.Now, caValidity)
	if err != nil {
		return nil, err
	}
	caKey, err := ca.KeyPEM()
	if err != nil {
		return nil, err
	}
	srvCert, srvKey, err := ca.Issue(opts.Name, RoleServer, opts.Hosts, opts.Now, opts.Validity)
	if err != nil {
		return nil, err
	}
	id, rcpt, err := GenerateIdentity(opts.AgeKind)
	if err != nil {
		return nil, err
	}
	signer, err := GenerateSigner(opts.SignScheme)
	if err != nil {
		return nil, err
	}
	signText, err := signer.MarshalText()
	if err != nil {
		return nil, err
	}
	verifyText, err := signer.Verifier().MarshalText()
	if err != nil {
		return nil, err
	}
	cluster := make([]byte, ClusterKeySize)
	if _, err := rand.Read(cluster); err != nil {
		return nil, fmt.Errorf("cluster key: %w", err)
	}
	created := opts.Now.UTC().Format(time.RFC3339)
	return map[string][]byte{
		FileCACert:        ca.CertPEM(),
		FileCAKey:         caKey,
		FileServerCert:    srvCert,
		FileServerKey:     srvKey,
		FileAgeIdentity:   fmt.Appendf(nil, "# created: %s\n# public key: %s\n%s\n", created, rcpt, id),
		FileAgeRecipient:  []byte(rcpt + "\n"),
		FileSigningKey:    append(signText, '\n'),
		FileVerifyKey:     append(verifyText, '\n'),
		FileClusterSecret: []byte(base64.StdEncoding.EncodeToString(cluster) + "\n"),
	}, nil
}

// writeNew creates path (failing if it exists) with perm and writes data.
func writeNew(path string, data []byte, perm os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// readMaterial reads a key or certificate file of at most maxMaterialFile
// bytes; with secret, it refuses a file that group or others may access
// (checked on Unix-like systems only: Windows permissions do not map to
// mode bits).
func readMaterial(path string, secret bool) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if secret && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s holds a secret but its permissions %04o let group or others access it; run chmod 600 %s",
			path, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxMaterialFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxMaterialFile {
		return nil, fmt.Errorf("%s is larger than %d bytes; not a key or certificate file", path, maxMaterialFile)
	}
	return data, nil
}

// Coordinator is the material of a coordinator folder, loaded by
// [LoadDir].
type Coordinator struct {
	Dir           string
	Authority     *Authority
	ServerCertPEM []byte
	ServerKeyPEM  []byte
	// Identity decrypts uploads; Recipient is its public text, which
	// clients encrypt to.
	Identity  age.Identity
	Recipient string
	// Signer signs broadcasts.
	Signer *Signer
	// ClusterKey is the gossip keyring secret (ClusterKeySize bytes).
	ClusterKey []byte
}

// LoadDir loads and cross-checks a coordinator folder made by [InitDir]:
// every file parses, the server certificate was issued by the CA and
// matches its key, age.pub is age.key's recipient and sign.pub is
// sign.key's verification key. Errors name the file at fault.
func LoadDir(dir string) (*Coordinator, error) {
	raw := make(map[string][]byte, len(dirFiles))
	for _, f := range dirFiles {
		data, err := readMaterial(filepath.Join(dir, f.name), f.secret)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("load coordinator folder %s: %s is missing (create the folder with init)", dir, f.name)
			}
			return nil, fmt.Errorf("load coordinator folder %s: %w", dir, err)
		}
		raw[f.name] = data
	}
	bad := func(file string, err error) error {
		return fmt.Errorf("load coordinator folder %s: %s: %w", dir, file, err)
	}

	ca, err := ParseAuthority(raw[FileCACert], raw[FileCAKey])
	if err != nil {
		return nil, bad(FileCACert+" / "+FileCAKey, err)
	}
	if _, err := leafPair(raw[FileServerCert], raw[FileServerKey], ca.Cert, x509.ExtKeyUsageServerAuth); err != nil {
		return nil, bad(FileServerCert+" / "+FileServerKey, err)
	}
	id, err := ParseIdentity(string(raw[FileAgeIdentity]))
	if err != nil {
		return nil, bad(FileAgeIdentity, err)
	}
	rcptText := strings.TrimSpace(string(raw[FileAgeRecipient]))
	if _, err := ParseRecipient(rcptText); err != nil {
		return nil, bad(FileAgeRecipient, err)
	}
	if want, ok := recipientOf(id); !ok || want != rcptText {
		return nil, bad(FileAgeRecipient, errors.New("is not the recipient of "+FileAgeIdentity))
	}
	signer, err := ParseSigner(raw[FileSigningKey])
	if err != nil {
		return nil, bad(FileSigningKey, err)
	}
	verifier, err := ParseVerifier(raw[FileVerifyKey])
	if err != nil {
		return nil, bad(FileVerifyKey, err)
	}
	if !verifier.Equal(signer.Verifier()) {
		return nil, bad(FileVerifyKey, errors.New("is not the verification key of "+FileSigningKey))
	}
	cluster, err := base64.StdEncoding.Strict().DecodeString(strings.TrimSpace(string(raw[FileClusterSecret])))
	if err != nil {
		return nil, bad(FileClusterSecret, fmt.Errorf("bad base64: %w", err))
	}
	if len(cluster) != ClusterKeySize {
		return nil, bad(FileClusterSecret, fmt.Errorf("%d bytes, want %d", len(cluster), ClusterKeySize))
	}
	return &Coordinator{
		Dir:           dir,
		Authority:     ca,
		ServerCertPEM: bytes.Clone(raw[FileServerCert]),
		ServerKeyPEM:  bytes.Clone(raw[FileServerKey]),
		Identity:      id,
		Recipient:     rcptText,
		Signer:        signer,
		ClusterKey:    cluster,
	}, nil
}

// ServerTLS returns the coordinator's mutual TLS 1.3 configuration
// (see [ServerTLS]).
func (c *Coordinator) ServerTLS() (*tls.Config, error) {
	return ServerTLS(c.ServerCertPEM, c.ServerKeyPEM, c.Authority.CertPEM())
}

// Enroll issues the client name a bundle: a new client certificate valid
// from now (zero means time.Now()) for validity (zero means one year), the
// CA certificate, the coordinator's age recipient and verification key, and
// the gossip secret. The caller may set Bundle.Coordinator before writing
// it.
func (c *Coordinator) Enroll(name string, validity time.Duration, now time.Time) (*Bundle, error) {
	return c.enroll(name, RoleClient, validity, now)
}

// EnrollOperator is Enroll for an operator: the bundle's certificate is a
// RoleOperator one, which sees the coordinator's full status.
func (c *Coordinator) EnrollOperator(name string, validity time.Duration, now time.Time) (*Bundle, error) {
	return c.enroll(name, RoleOperator, validity, now)
}

func (c *Coordinator) enroll(name string, role Role, validity time.Duration, now time.Time) (*Bundle, error) {
	if validity == 0 {
		validity = year
	}
	certPEM, keyPEM, err := c.Authority.Issue(name, role, nil, now, validity)
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	verifier, err := c.Signer.Verifier().MarshalText()
	if err != nil {
		return nil, fmt.Errorf("enroll: %w", err)
	}
	return &Bundle{
		Name:       name,
		CertPEM:    certPEM,
		KeyPEM:     keyPEM,
		CAPEM:      c.Authority.CertPEM(),
		Recipient:  c.Recipient,
		Verifier:   string(verifier),
		ClusterKey: bytes.Clone(c.ClusterKey),
	}, nil
}
