package secure

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
)

// Age key kinds.
const (
	// AgeHybrid is the post-quantum hybrid ML-KEM-768 + X25519 kind
	// (AGE-SECRET-KEY-PQ-1..., age1pq1...), the default: uploads recorded
	// today stay confidential against a future quantum computer.
	AgeHybrid = "hybrid"
	// AgeX25519 is classic age X25519 (AGE-SECRET-KEY-1..., age1...), with
	// much shorter keys and headers.
	AgeX25519 = "x25519"
)

// GenerateIdentity makes a new age key pair of kind AgeHybrid (also for
// kind "") or AgeX25519, and returns its text encodings: the secret
// identity and the public recipient.
func GenerateIdentity(kind string) (identity, recipient string, err error) {
	switch kind {
	case "", AgeHybrid:
		id, err := age.GenerateHybridIdentity()
		if err != nil {
			return "", "", fmt.Errorf("generate age identity: %w", err)
		}
		return id.String(), id.Recipient().String(), nil
	case AgeX25519:
		id, err := age.GenerateX25519Identity()
		if err != nil {
			return "", "", fmt.Errorf("generate age identity: %w", err)
		}
		return id.String(), id.Recipient().String(), nil
	}
	return "", "", fmt.Errorf("generate age identity: unknown kind %q (want %q or %q)", kind, AgeHybrid, AgeX25519)
}

// ParseIdentity parses one age identity of either kind. s may be a whole
// identity file as age-keygen writes it: blank lines and "#" comments are
// skipped, and exactly one identity must remain. Errors never quote the
// input, which is secret.
func ParseIdentity(s string) (age.Identity, error) {
	ids, err := age.ParseIdentities(strings.NewReader(s))
	if err != nil {
		return nil, fmt.Errorf("parse age identity (want AGE-SECRET-KEY-PQ-1... or AGE-SECRET-KEY-1...): %w", err)
	}
	if len(ids) != 1 {
		return nil, fmt.Errorf("parse age identity: found %d identities, want 1", len(ids))
	}
	return ids[0], nil
}

// ParseRecipient parses one age recipient of either kind (age1pq1... or
// age1...); blank lines and "#" comments are skipped.
func ParseRecipient(s string) (age.Recipient, error) {
	rs, err := age.ParseRecipients(strings.NewReader(s))
	if err != nil {
		return nil, fmt.Errorf("parse age recipient (want age1pq1... or age1...): %w", err)
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("parse age recipient: found %d recipients, want 1", len(rs))
	}
	return rs[0], nil
}

// recipientOf returns the text recipient of an identity this package
// creates, to check that an identity and a recipient belong together.
func recipientOf(id age.Identity) (string, bool) {
	switch id := id.(type) {
	case *age.HybridIdentity:
		return id.Recipient().String(), true
	case *age.X25519Identity:
		return id.Recipient().String(), true
	}
	return "", false
}

// Encrypt encrypts plaintext to r in age's binary format.
func Encrypt(r age.Recipient, plaintext []byte) ([]byte, error) {
	if r == nil {
		return nil, errors.New("encrypt: no recipient")
	}
	var buf bytes.Buffer
	// Header (~1.2 KiB for hybrid), 16-byte tag per 64 KiB chunk.
	buf.Grow(len(plaintext) + len(plaintext)/4096 + 2048)
	w, err := age.Encrypt(&buf, r)
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	if _, err := w.Write(plaintext); err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	return buf.Bytes(), nil
}

// Decrypt decrypts an age file (binary format) with id. It refuses, before
// allocating it, a plaintext larger than maxPlaintext bytes: the size is
// authenticated (age checks the final chunk first), so a sender cannot make
// the coordinator allocate more than it allows. Errors start with
// "decrypt upload:" and wrap age's (for a wrong identity, an
// *age.NoIdentityMatchError).
func Decrypt(id age.Identity, ciphertext []byte, maxPlaintext int64) ([]byte, error) {
	if id == nil {
		return nil, errors.New("decrypt upload: no identity")
	}
	if maxPlaintext < 0 {
		return nil, fmt.Errorf("decrypt upload: maximum plaintext size %d is negative", maxPlaintext)
	}
	ra, size, err := age.DecryptReaderAt(bytes.NewReader(ciphertext), int64(len(ciphertext)), id)
	if err != nil {
		return nil, fmt.Errorf("decrypt upload: %w", err)
	}
	if size > maxPlaintext {
		return nil, fmt.Errorf("decrypt upload: plaintext is %d bytes, more than the %d allowed", size, maxPlaintext)
	}
	if size < 0 || size > int64(len(ciphertext)) { // cannot happen: age's chunks only add bytes
		return nil, fmt.Errorf("decrypt upload: implausible plaintext size %d", size)
	}
	plain := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(ra, 0, size), plain); err != nil {
		return nil, fmt.Errorf("decrypt upload: %w", err)
	}
	return plain, nil
}
