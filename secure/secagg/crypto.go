package secagg

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cloudflare/circl/dh/x25519"
	"github.com/cloudflare/circl/kem/xwing"
)

// Domain labels. Every derivation is HKDF-SHA256 with the configuration
// digest as salt and a label, the round and the ids involved as info, so no
// key is ever used for two purposes, two rounds or two pairs.
const (
	labelSelfMask   = "kronfed/secagg/v1/self-mask"
	labelPairMask   = "kronfed/secagg/v1/pair-mask"
	labelShareKey   = "kronfed/secagg/v1/share-key"
	labelShareAD    = "kronfed/secagg/v1/share-ad"
	labelMaskKey    = "kronfed/secagg/v1/mask-key"
	labelXWingEnc   = "kronfed/secagg/v1/xwing-encaps"
	labelSelfCommit = "kronfed/secagg/v1/self-commit"
)

// derive returns HKDF-SHA256(secret, salt = digest, info = label ‖ round ‖
// ids) truncated to n bytes.
func derive(secret []byte, digest *[32]byte, label string, round uint64, n int, ids ...uint32) []byte {
	info := make([]byte, 0, len(label)+1+8+4*len(ids))
	info = append(info, label...)
	info = append(info, 0)
	info = binary.BigEndian.AppendUint64(info, round)
	for _, id := range ids {
		info = binary.BigEndian.AppendUint32(info, id)
	}
	k, err := hkdf.Key(sha256.New, secret, digest[:], string(info), n)
	if err != nil {
		// Only possible for n > 255·32, which no caller asks for.
		panic("secagg: hkdf: " + err.Error())
	}
	return k
}

func derive32(secret []byte, digest *[32]byte, label string, round uint64, ids ...uint32) [32]byte {
	var out [32]byte
	copy(out[:], derive(secret, digest, label, round, 32, ids...))
	return out
}

func selfCommit(seed *[32]byte, digest *[32]byte, round uint64, id uint32) [32]byte {
	h := sha256.New()
	h.Write([]byte(labelSelfCommit))
	h.Write(digest[:])
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], round)
	binary.BigEndian.PutUint32(b[8:], id)
	h.Write(b[:])
	h.Write(seed[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func (k KeyAgreement) publicKeySize() int {
	if k == XWing {
		return xwing.PublicKeySize
	}
	return x25519.Size
}

// kemCiphertextSize is the size of an encapsulation (0 with X25519).
func (k KeyAgreement) kemCiphertextSize() int {
	if k == XWing {
		return xwing.CiphertextSize
	}
	return 0
}

// keyPair is one client key pair in either scheme. With X25519 priv is the
// scalar; with X-Wing xsk is the expanded private key (deriving it from the
// seed costs an ML-KEM key generation, so it is kept).
type keyPair struct {
	pub  []byte
	priv x25519.Key
	xsk  *xwing.PrivateKey
}

// newKeyPair derives a key pair from 32 bytes of seed material.
func newKeyPair(ka KeyAgreement, seed *[32]byte) keyPair {
	switch ka {
	case XWing:
		sk, pk := xwing.DeriveKeyPair(seed[:])
		pub := make([]byte, xwing.PublicKeySize)
		pk.Pack(pub)
		return keyPair{pub: pub, xsk: sk}
	default:
		var kp keyPair
		copy(kp.priv[:], seed[:])
		var pub x25519.Key
		x25519.KeyGen(&pub, &kp.priv)
		kp.pub = pub[:]
		return kp
	}
}

// checkPublicKey checks a peer's advertised key: its size, and for X-Wing
// the ML-KEM encapsulation-key check. For X25519 low-order points are caught
// when the key is used.
func checkPublicKey(ka KeyAgreement, pub []byte) error {
	if len(pub) != ka.publicKeySize() {
		return fmt.Errorf("%s public key of %d bytes, want %d", ka, len(pub), ka.publicKeySize())
	}
	if ka == XWing {
		var pk xwing.PublicKey
		if err := pk.Unpack(pub); err != nil {
			return fmt.Errorf("invalid X-Wing public key: %w", err)
		}
	}
	return nil
}

func x25519Shared(priv *x25519.Key, pub []byte) ([]byte, error) {
	if len(pub) != x25519.Size {
		return nil, fmt.Errorf("X25519 public key of %d bytes", len(pub))
	}
	var peer, ss x25519.Key
	copy(peer[:], pub)
	if !x25519.Shared(&ss, priv, &peer) {
		return nil, errors.New("X25519 public key is a low-order point")
	}
	return ss[:], nil
}

// xwingEncapsulate encapsulates to pub with the given 64-byte seed.
func xwingEncapsulate(pub []byte, seed []byte) (ss, ct []byte, err error) {
	if len(pub) != xwing.PublicKeySize {
		return nil, nil, fmt.Errorf("X-Wing public key of %d bytes", len(pub))
	}
	var pk xwing.PublicKey
	if err := pk.Unpack(pub); err != nil {
		return nil, nil, fmt.Errorf("invalid X-Wing public key: %w", err)
	}
	ss = make([]byte, xwing.SharedKeySize)
	ct = make([]byte, xwing.CiphertextSize)
	pk.EncapsulateTo(ct, ss, seed)
	return ss, ct, nil
}

func xwingDecapsulate(sk *xwing.PrivateKey, ct []byte) ([]byte, error) {
	if len(ct) != xwing.CiphertextSize {
		return nil, fmt.Errorf("X-Wing ciphertext of %d bytes, want %d", len(ct), xwing.CiphertextSize)
	}
	ss := make([]byte, xwing.SharedKeySize)
	sk.DecapsulateTo(ss, ct)
	return ss, nil
}

// ---- share channel ----

// shareAD is the associated data of a sealed share: it binds the ciphertext
// to the round's configuration, the round, the sender and the receiver.
func shareAD(digest *[32]byte, round uint64, from, to uint32) []byte {
	ad := make([]byte, 0, len(labelShareAD)+32+16)
	ad = append(ad, labelShareAD...)
	ad = append(ad, digest[:]...)
	ad = binary.BigEndian.AppendUint64(ad, round)
	ad = binary.BigEndian.AppendUint32(ad, from)
	return binary.BigEndian.AppendUint32(ad, to)
}

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("secagg: aes: " + err.Error())
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("secagg: gcm: " + err.Error())
	}
	return aead
}

// seal encrypts plaintext from→to under a key agreed with the receiver's
// share key. It returns the KEM ciphertext (X-Wing only) and nonce ‖
// AES-256-GCM ciphertext.
func seal(ka KeyAgreement, own *keyPair, peerPub []byte, digest *[32]byte, round uint64, from, to uint32, plaintext []byte, rnd io.Reader) (kemCT, sealed []byte, err error) {
	var ss []byte
	switch ka {
	case XWing:
		seed := make([]byte, xwing.EncapsulationSeedSize)
		if _, err := io.ReadFull(rnd, seed); err != nil {
			return nil, nil, fmt.Errorf("randomness: %w", err)
		}
		ss, kemCT, err = xwingEncapsulate(peerPub, seed)
	default:
		ss, err = x25519Shared(&own.priv, peerPub)
	}
	if err != nil {
		return nil, nil, err
	}
	key := derive(ss, digest, labelShareKey, round, 32, from, to)
	aead := newGCM(key)
	sealed = make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := io.ReadFull(rnd, sealed); err != nil {
		return nil, nil, fmt.Errorf("randomness: %w", err)
	}
	sealed = aead.Seal(sealed, sealed, plaintext, shareAD(digest, round, from, to))
	return kemCT, sealed, nil
}

var errOpen = errors.New("share ciphertext failed authentication (tampered, or sealed for another round, sender or receiver)")

// open reverses seal on the receiver's side.
func open(ka KeyAgreement, own *keyPair, senderPub, kemCT, sealed []byte, digest *[32]byte, round uint64, from, to uint32) ([]byte, error) {
	var ss []byte
	var err error
	switch ka {
	case XWing:
		ss, err = xwingDecapsulate(own.xsk, kemCT)
	default:
		if len(kemCT) != 0 {
			return nil, errors.New("unexpected KEM ciphertext with X25519")
		}
		ss, err = x25519Shared(&own.priv, senderPub)
	}
	if err != nil {
		return nil, err
	}
	key := derive(ss, digest, labelShareKey, round, 32, from, to)
	aead := newGCM(key)
	if len(sealed) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("sealed shares of %d bytes, too short", len(sealed))
	}
	pt, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], shareAD(digest, round, from, to))
	if err != nil {
		return nil, errOpen
	}
	return pt, nil
}

// ---- pairwise mask secrets ----

// maskKeyPair derives a client's mask key pair from its secret-shared mask
// seed. The server repeats this for a dropped client after reconstructing
// the seed, and checks the public half against what the client advertised.
func maskKeyPair(ka KeyAgreement, seed *[32]byte, digest *[32]byte, round uint64, id uint32) keyPair {
	m := derive32(seed[:], digest, labelMaskKey, round, id)
	kp := newKeyPair(ka, &m)
	clear(m[:])
	return kp
}

// pairSecretLow computes the pairwise secret of low < high from low's side.
// With X25519 it is Diffie-Hellman; with X-Wing low encapsulates to high's
// mask key with a seed derived from low's mask seed, so that whoever
// reconstructs that seed can redo the encapsulation, and returns the
// ciphertext for high.
func pairSecretLow(ka KeyAgreement, own *keyPair, maskSeed *[32]byte, highPub []byte, digest *[32]byte, round uint64, low, high uint32) (ss, ct []byte, err error) {
	if ka == XWing {
		seed := derive(maskSeed[:], digest, labelXWingEnc, round, xwing.EncapsulationSeedSize, low, high)
		return xwingEncapsulate(highPub, seed)
	}
	ss, err = x25519Shared(&own.priv, highPub)
	return ss, nil, err
}

// pairSecretHigh computes the pairwise secret of low < high from high's
// side, given (X-Wing) low's ciphertext.
func pairSecretHigh(ka KeyAgreement, own *keyPair, lowPub, ct []byte) ([]byte, error) {
	if ka == XWing {
		return xwingDecapsulate(own.xsk, ct)
	}
	return x25519Shared(&own.priv, lowPub)
}

// ---- masks ----

// maskSeed turns an agreed pairwise secret into the key of its mask stream.
func pairStreamKey(ss []byte, digest *[32]byte, round uint64, a, b uint32) [32]byte {
	lo, hi := min(a, b), max(a, b)
	return derive32(ss, digest, labelPairMask, round, lo, hi)
}

func selfStreamKey(seed *[32]byte, digest *[32]byte, round uint64, id uint32) [32]byte {
	return derive32(seed[:], digest, labelSelfMask, round, id)
}

// maskWidth is the number of keystream bytes per coordinate: the smallest of
// 1, 2, 4, 8 that holds m bits.
func maskWidth(m int) int {
	switch {
	case m <= 8:
		return 1
	case m <= 16:
		return 2
	case m <= 32:
		return 4
	}
	return 8
}

const maskChunk = 4096 // coordinates per keystream chunk

// masker expands mask streams. The stream of key K is AES-256-CTR under K
// with a zero IV (every key is used for one stream only); coordinate j is
// the little-endian integer in keystream bytes [j·w, (j+1)·w), with w =
// maskWidth(M). Its low M bits are uniform, which is all that matters
// modulo 2^M, so values are added at full width and the sum is reduced
// once. A masker reuses its buffers; it is not safe for concurrent use.
type masker struct {
	width int
	zero  []byte
	buf   []byte
}

func newMasker(m int) *masker {
	w := maskWidth(m)
	return &masker{width: w, zero: make([]byte, maskChunk*w), buf: make([]byte, maskChunk*w)}
}

// apply adds (neg = false) or subtracts (neg = true) the stream of key to
// acc, modulo 2^64.
func (mk *masker) apply(acc []uint64, key *[32]byte, neg bool) {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic("secagg: aes: " + err.Error())
	}
	var iv [aes.BlockSize]byte
	stream := cipher.NewCTR(block, iv[:])
	w := mk.width
	for off := 0; off < len(acc); off += maskChunk {
		a := acc[off:min(off+maskChunk, len(acc))]
		buf := mk.buf[:len(a)*w]
		stream.XORKeyStream(buf, mk.zero[:len(buf)])
		switch w {
		case 1:
			if neg {
				for j := range a {
					a[j] -= uint64(buf[j])
				}
			} else {
				for j := range a {
					a[j] += uint64(buf[j])
				}
			}
		case 2:
			if neg {
				for j := range a {
					a[j] -= uint64(binary.LittleEndian.Uint16(buf[2*j:]))
				}
			} else {
				for j := range a {
					a[j] += uint64(binary.LittleEndian.Uint16(buf[2*j:]))
				}
			}
		case 4:
			if neg {
				for j := range a {
					a[j] -= uint64(binary.LittleEndian.Uint32(buf[4*j:]))
				}
			} else {
				for j := range a {
					a[j] += uint64(binary.LittleEndian.Uint32(buf[4*j:]))
				}
			}
		default:
			if neg {
				for j := range a {
					a[j] -= binary.LittleEndian.Uint64(buf[8*j:])
				}
			} else {
				for j := range a {
					a[j] += binary.LittleEndian.Uint64(buf[8*j:])
				}
			}
		}
	}
	clear(mk.buf)
}

// ctEqual compares two byte strings in constant time.
func ctEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }
