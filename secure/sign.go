package secure

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/schemes"
)

// Signature schemes offered for the coordinator's signing key (names as in
// circl's schemes.ByName).
const (
	// SchemeEd25519 is the default: small keys and signatures, fast.
	SchemeEd25519 = "Ed25519"
	// SchemeMLDSA65 is FIPS 204 ML-DSA-65, post-quantum.
	SchemeMLDSA65 = "ML-DSA-65"
	// SchemeEd25519Dilithium2 is a hybrid: a signature verifies only if both
	// its Ed25519 and its Dilithium2 halves do, so it stays secure while
	// either one does.
	SchemeEd25519Dilithium2 = "Ed25519-Dilithium2"
)

// SignSchemes lists the offered signature schemes, default first.
func SignSchemes() []string {
	return []string{SchemeEd25519, SchemeMLDSA65, SchemeEd25519Dilithium2}
}

// ErrBadSignature is wrapped by every error for a signature that does not
// verify.
var ErrBadSignature = errors.New("signature does not verify")

// Text forms of keys. Both are one line, "<prefix>:<scheme>:<base64>", with
// standard padded base64. The signing key is the scheme's 32-byte seed, from
// which the key pair is derived (so a parsed signing key is always a
// consistent pair); the verification key is the scheme's public key.
const (
	signingKeyPrefix = "kronfed-signing-key"
	verifyKeyPrefix  = "kronfed-verify-key"
	// maxKeyText bounds the text parsed: an ML-DSA-65 public key (1952
	// bytes) is about 2.6 KiB in base64.
	maxKeyText = 8 << 10
)

func lookupScheme(name string) (sign.Scheme, error) {
	if name == "" {
		name = SchemeEd25519
	}
	s := schemes.ByName(name)
	if s != nil {
		for _, offered := range SignSchemes() {
			if s.Name() == offered {
				return s, nil
			}
		}
	}
	return nil, fmt.Errorf("unknown signature scheme %q (want one of %s)", name, strings.Join(SignSchemes(), ", "))
}

// Signer signs with a private key of one of the offered schemes. It is safe
// for concurrent use.
type Signer struct {
	scheme sign.Scheme
	seed   []byte
	priv   sign.PrivateKey
	pub    sign.PublicKey
}

// GenerateSigner makes a new signing key of scheme (one of [SignSchemes];
// "" means Ed25519; names are case-insensitive).
func GenerateSigner(scheme string) (*Signer, error) {
	s, err := lookupScheme(scheme)
	if err != nil {
		return nil, fmt.Errorf("generate signer: %w", err)
	}
	seed := make([]byte, s.SeedSize())
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("generate signer: %w", err)
	}
	return signerFromSeed(s, seed), nil
}

// signerFromSeed derives the key pair; len(seed) must be s.SeedSize().
func signerFromSeed(s sign.Scheme, seed []byte) *Signer {
	pub, priv := s.DeriveKey(seed)
	return &Signer{scheme: s, seed: bytes.Clone(seed), priv: priv, pub: pub}
}

// Scheme returns the signer's scheme name.
func (s *Signer) Scheme() string { return s.scheme.Name() }

// Sign signs msg.
func (s *Signer) Sign(msg []byte) []byte {
	return s.scheme.Sign(s.priv, msg, nil)
}

// Verifier returns the verifier of the signer's signatures.
func (s *Signer) Verifier() *Verifier {
	return &Verifier{scheme: s.scheme, pub: s.pub}
}

// MarshalText encodes the signing key as "kronfed-signing-key:<scheme>:<base64 seed>".
// The text is secret.
func (s *Signer) MarshalText() ([]byte, error) {
	return []byte(signingKeyPrefix + ":" + s.scheme.Name() + ":" + base64.StdEncoding.EncodeToString(s.seed)), nil
}

// ParseSigner parses the text of [Signer.MarshalText]; surrounding white
// space is ignored. Errors never quote the key.
func ParseSigner(text []byte) (*Signer, error) {
	s, raw, err := parseKeyText(text, signingKeyPrefix)
	if err != nil {
		return nil, fmt.Errorf("parse signing key: %w", err)
	}
	if len(raw) != s.SeedSize() {
		return nil, fmt.Errorf("parse signing key: %s seed is %d bytes, want %d", s.Name(), len(raw), s.SeedSize())
	}
	return signerFromSeed(s, raw), nil
}

// parseKeyText splits "<prefix>:<scheme>:<base64>" and decodes it.
func parseKeyText(text []byte, prefix string) (sign.Scheme, []byte, error) {
	if len(text) > maxKeyText {
		return nil, nil, fmt.Errorf("%d bytes is too long for a key", len(text))
	}
	parts := strings.Split(strings.TrimSpace(string(text)), ":")
	if len(parts) != 3 || parts[0] != prefix {
		return nil, nil, fmt.Errorf("want %q", prefix+":<scheme>:<base64>")
	}
	s, err := lookupScheme(parts[1])
	if err != nil {
		return nil, nil, err
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(parts[2])
	if err != nil {
		return nil, nil, fmt.Errorf("%s key: bad base64: %w", s.Name(), err)
	}
	return s, raw, nil
}

// Verifier checks signatures of one public key. It is safe for concurrent
// use.
type Verifier struct {
	scheme sign.Scheme
	pub    sign.PublicKey
}

// Scheme returns the verifier's scheme name.
func (v *Verifier) Scheme() string { return v.scheme.Name() }

// Verify checks sig on msg; a signature that does not verify returns an
// error wrapping [ErrBadSignature] and naming the scheme.
func (v *Verifier) Verify(msg, sig []byte) error {
	if len(sig) != v.scheme.SignatureSize() || !v.scheme.Verify(v.pub, msg, sig, nil) {
		return fmt.Errorf("%s: %w", v.scheme.Name(), ErrBadSignature)
	}
	return nil
}

// Equal reports whether v and o hold the same scheme and public key.
func (v *Verifier) Equal(o *Verifier) bool {
	if v == nil || o == nil {
		return v == o
	}
	return v.scheme.Name() == o.scheme.Name() && v.pub.Equal(o.pub)
}

// MarshalText encodes the verification key as
// "kronfed-verify-key:<scheme>:<base64 public key>".
func (v *Verifier) MarshalText() ([]byte, error) {
	raw, err := v.pub.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal verification key: %w", err)
	}
	return []byte(verifyKeyPrefix + ":" + v.scheme.Name() + ":" + base64.StdEncoding.EncodeToString(raw)), nil
}

// ParseVerifier parses the text of [Verifier.MarshalText]; surrounding
// white space is ignored.
func ParseVerifier(text []byte) (*Verifier, error) {
	s, raw, err := parseKeyText(text, verifyKeyPrefix)
	if err != nil {
		return nil, fmt.Errorf("parse verification key: %w", err)
	}
	if len(raw) != s.PublicKeySize() {
		return nil, fmt.Errorf("parse verification key: %s public key is %d bytes, want %d", s.Name(), len(raw), s.PublicKeySize())
	}
	pub, err := s.UnmarshalBinaryPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("parse verification key: %s: %w", s.Name(), err)
	}
	// Unpacking is lenient for some schemes (ML-DSA reduces out-of-range
	// coefficients); accept only the canonical encoding, so one key has one
	// text and Equal on texts means equal keys.
	again, err := pub.MarshalBinary()
	if err != nil || !bytes.Equal(again, raw) {
		return nil, fmt.Errorf("parse verification key: %s public key is not canonically encoded", s.Name())
	}
	return &Verifier{scheme: s, pub: pub}, nil
}
