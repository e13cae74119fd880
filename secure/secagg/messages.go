package secagg

import (
	"encoding/binary"
	"fmt"
)

// Bounds the decoders enforce on variable-size fields. They are loose
// enough for every key agreement (an X-Wing public key is 1216 bytes and a
// ciphertext 1120) and tight enough that a hostile length cannot make a
// decoder allocate more than the message it was handed.
const (
	maxKeyBytes        = 4096
	maxCiphertextBytes = 4096
	maxSealedBytes     = 1024
)

// AdvertiseKeys is round 1, client → server: a client's two public keys.
// The server relays them to the client's neighbours in a [KeyBundle].
type AdvertiseKeys struct {
	Round uint64
	// ConfigDigest is the sender's [Config.Digest]; the server refuses a
	// client that holds a different configuration.
	ConfigDigest [32]byte
	ID           uint32
	// ShareKey encrypts the secret shares sent to this client (X25519 public
	// key, 32 bytes, or X-Wing encapsulation key, 1216 bytes).
	ShareKey []byte
	// MaskKey agrees the pairwise masks (same types). Its private half is
	// derived from a 32-byte seed that the client secret-shares.
	MaskKey []byte
	// SelfCommit is SHA-256 over a domain label, the configuration digest,
	// the client id and its self-mask seed. The seed is 256 uniform bits, so
	// the commitment hides it; the server uses it to check a reconstructed
	// seed before trusting it.
	SelfCommit [32]byte
}

// KeyBundle is round 1, server → client To: the advertised keys of To's
// neighbours that advertised in time, in increasing id order.
type KeyBundle struct {
	Round uint64
	To    uint32
	Keys  []AdvertiseKeys
}

// EncryptedShare carries From's secret shares to To, sealed so that only To
// can open them.
type EncryptedShare struct {
	From, To uint32
	// KEMCiphertext is the X-Wing encapsulation that keys Sealed (empty with
	// X25519, where the key comes from static Diffie-Hellman).
	KEMCiphertext []byte
	// MaskCiphertext is the X-Wing encapsulation of the pairwise mask secret,
	// present only with X-Wing and only when From < To.
	MaskCiphertext []byte
	// Sealed is nonce ‖ AES-256-GCM(share of From's self-mask seed ‖ share of
	// From's mask-key seed), with the round, From and To as associated data.
	Sealed []byte
}

// ShareKeys is round 2, client → server: one [EncryptedShare] for each
// neighbour whose keys the client received.
type ShareKeys struct {
	Round  uint64
	From   uint32
	Shares []EncryptedShare
}

// ShareBundle is round 2, server → client To: the shares addressed to To by
// neighbours that completed round 2. Its senders are exactly the neighbours
// To masks against in round 3.
type ShareBundle struct {
	Round  uint64
	To     uint32
	Shares []EncryptedShare
}

// MaskedInput is round 3, client → server: the client's masked vector packed
// at M bits a value ([Pack]).
type MaskedInput struct {
	Round uint64
	ID    uint32
	Data  []byte
}

// UnmaskRequest is round 4, server → surviving clients: which clients'
// masked inputs arrived (Survivors) and which completed round 2 but sent no
// masked input (Dropped). Both lists are in increasing order.
type UnmaskRequest struct {
	Round     uint64
	Survivors []uint32
	Dropped   []uint32
}

// ShareKind says which of a client's two secrets a revealed share belongs to.
type ShareKind uint8

const (
	// SelfMaskShare is a share of the owner's self-mask seed b_i; revealed
	// only for survivors.
	SelfMaskShare ShareKind = 1
	// MaskKeyShare is a share of the owner's mask-key seed; revealed only for
	// dropped clients.
	MaskKeyShare ShareKind = 2
)

func (k ShareKind) String() string {
	switch k {
	case SelfMaskShare:
		return "self-mask seed"
	case MaskKeyShare:
		return "mask-key seed"
	}
	return fmt.Sprintf("ShareKind(%d)", uint8(k))
}

// RevealedShare is one share a client hands back in round 4.
type RevealedShare struct {
	Owner uint32
	Kind  ShareKind
	Value [shareSize]byte
}

// UnmaskResponse is round 4, client → server: for every neighbour it holds
// shares of, the share of the self-mask seed (survivor) or of the mask-key
// seed (dropped), never both.
type UnmaskResponse struct {
	Round  uint64
	From   uint32
	Shares []RevealedShare
}

// ---- AdvertiseKeys ----

// MarshalBinary encodes the message.
func (m *AdvertiseKeys) MarshalBinary() ([]byte, error) {
	b := header(tagAdvertiseKeys, 2+8+32+4+8+len(m.ShareKey)+len(m.MaskKey)+32)
	b = appendAdvertiseBody(b, m)
	return b, nil
}

func appendAdvertiseBody(b []byte, m *AdvertiseKeys) []byte {
	b = binary.BigEndian.AppendUint64(b, m.Round)
	b = append(b, m.ConfigDigest[:]...)
	b = binary.BigEndian.AppendUint32(b, m.ID)
	b = appendBlob(b, m.ShareKey)
	b = appendBlob(b, m.MaskKey)
	b = append(b, m.SelfCommit[:]...)
	return b
}

const minAdvertiseBody = 8 + 32 + 4 + 4 + 4 + 32

func readAdvertiseBody(r *reader, m *AdvertiseKeys) {
	m.Round = r.u64()
	copy(m.ConfigDigest[:], r.bytes(32))
	m.ID = r.u32()
	m.ShareKey = r.blob(maxKeyBytes, "share key")
	m.MaskKey = r.blob(maxKeyBytes, "mask key")
	copy(m.SelfCommit[:], r.bytes(32))
}

// UnmarshalBinary decodes a message written by MarshalBinary.
func (m *AdvertiseKeys) UnmarshalBinary(data []byte) error {
	r, err := newReader(data, tagAdvertiseKeys, "advertise-keys")
	if err != nil {
		return err
	}
	var d AdvertiseKeys
	readAdvertiseBody(r, &d)
	if err := r.done(); err != nil {
		return err
	}
	*m = d
	return nil
}

// ---- KeyBundle ----

// MarshalBinary encodes the message.
func (m *KeyBundle) MarshalBinary() ([]byte, error) {
	size := 2 + 8 + 4 + 4
	for i := range m.Keys {
		size += minAdvertiseBody + len(m.Keys[i].ShareKey) + len(m.Keys[i].MaskKey)
	}
	b := header(tagKeyBundle, size)
	b = binary.BigEndian.AppendUint64(b, m.Round)
	b = binary.BigEndian.AppendUint32(b, m.To)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Keys)))
	for i := range m.Keys {
		b = appendAdvertiseBody(b, &m.Keys[i])
	}
	return b, nil
}

// UnmarshalBinary decodes a message written by MarshalBinary.
func (m *KeyBundle) UnmarshalBinary(data []byte) error {
	r, err := newReader(data, tagKeyBundle, "key bundle")
	if err != nil {
		return err
	}
	var d KeyBundle
	d.Round = r.u64()
	d.To = r.u32()
	n := r.count(minAdvertiseBody, "keys")
	if n > 0 {
		d.Keys = make([]AdvertiseKeys, n)
		for i := range d.Keys {
			readAdvertiseBody(r, &d.Keys[i])
		}
	}
	if err := r.done(); err != nil {
		return err
	}
	*m = d
	return nil
}

// ---- EncryptedShare lists ----

const minShareSize = 4 + 4 + 4 + 4 + 4

func appendShares(b []byte, s []EncryptedShare) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	for i := range s {
		b = binary.BigEndian.AppendUint32(b, s[i].From)
		b = binary.BigEndian.AppendUint32(b, s[i].To)
		b = appendBlob(b, s[i].KEMCiphertext)
		b = appendBlob(b, s[i].MaskCiphertext)
		b = appendBlob(b, s[i].Sealed)
	}
	return b
}

func sharesSize(s []EncryptedShare) int {
	size := 4
	for i := range s {
		size += minShareSize + len(s[i].KEMCiphertext) + len(s[i].MaskCiphertext) + len(s[i].Sealed)
	}
	return size
}

func readShares(r *reader) []EncryptedShare {
	n := r.count(minShareSize, "shares")
	if n == 0 {
		return nil
	}
	s := make([]EncryptedShare, n)
	for i := range s {
		s[i].From = r.u32()
		s[i].To = r.u32()
		s[i].KEMCiphertext = r.blob(maxCiphertextBytes, "KEM ciphertext")
		s[i].MaskCiphertext = r.blob(maxCiphertextBytes, "mask ciphertext")
		s[i].Sealed = r.blob(maxSealedBytes, "sealed shares")
	}
	return s
}

// ---- ShareKeys ----

// MarshalBinary encodes the message.
func (m *ShareKeys) MarshalBinary() ([]byte, error) {
	b := header(tagShareKeys, 2+8+4+sharesSize(m.Shares))
	b = binary.BigEndian.AppendUint64(b, m.Round)
	b = binary.BigEndian.AppendUint32(b, m.From)
	return appendShares(b, m.Shares), nil
}

// UnmarshalBinary decodes a message written by MarshalBinary.
func (m *ShareKeys) UnmarshalBinary(data []byte) error {
	r, err := newReader(data, tagShareKeys, "share-keys")
	if err != nil {
		return err
	}
	var d ShareKeys
	d.Round = r.u64()
	d.From = r.u32()
	d.Shares = readShares(r)
	if err := r.done(); err != nil {
		return err
	}
	*m = d
	return nil
}

// ---- ShareBundle ----

// MarshalBinary encodes the message.
func (m *ShareBundle) MarshalBinary() ([]byte, error) {
	b := header(tagShareBundle, 2+8+4+sharesSize(m.Shares))
	b = binary.BigEndian.AppendUint64(b, m.Round)
	b = binary.BigEndian.AppendUint32(b, m.To)
	return appendShares(b, m.Shares), nil
}

// UnmarshalBinary decodes a message written by MarshalBinary.
func (m *ShareBundle) UnmarshalBinary(data []byte) error {
	r, err := newReader(data, tagShareBundle, "share bundle")
	if err != nil {
		return err
	}
	var d ShareBundle
	d.Round = r.u64()
	d.To = r.u32()
	d.Shares = readShares(r)
	if err := r.done(); err != nil {
		return err
	}
	*m = d
	return nil
}

// ---- MaskedInput ----

// MarshalBinary encodes the message.
func (m *MaskedInput) MarshalBinary() ([]byte, error) {
	b := header(tagMaskedInput, 2+8+4+4+len(m.Data))
	b = binary.BigEndian.AppendUint64(b, m.Round)
	b = binary.BigEndian.AppendUint32(b, m.ID)
	return appendBlob(b, m.Data), nil
}

// UnmarshalBinary decodes a message written by MarshalBinary. The packed
// data is checked against the configuration by the server, which knows L
// and M.
func (m *MaskedInput) UnmarshalBinary(data []byte) error {
	r, err := newReader(data, tagMaskedInput, "masked input")
	if err != nil {
		return err
	}
	var d MaskedInput
	d.Round = r.u64()
	d.ID = r.u32()
	d.Data = r.blob(r.remaining(), "packed vector")
	if err := r.done(); err != nil {
		return err
	}
	*m = d
	return nil
}

// ---- UnmaskRequest ----

func appendIDs(b []byte, ids []uint32) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(ids)))
	for _, id := range ids {
		b = binary.BigEndian.AppendUint32(b, id)
	}
	return b
}

func readIDs(r *reader, field string) []uint32 {
	n := r.count(4, field)
	if n == 0 {
		return nil
	}
	ids := make([]uint32, n)
	for i := range ids {
		ids[i] = r.u32()
	}
	return ids
}

// MarshalBinary encodes the message.
func (m *UnmaskRequest) MarshalBinary() ([]byte, error) {
	b := header(tagUnmaskRequest, 2+8+8+4*(len(m.Survivors)+len(m.Dropped)))
	b = binary.BigEndian.AppendUint64(b, m.Round)
	b = appendIDs(b, m.Survivors)
	return appendIDs(b, m.Dropped), nil
}

// UnmarshalBinary decodes a message written by MarshalBinary. Whether the
// lists make sense is for the client to judge ([Client.Unmask]).
func (m *UnmaskRequest) UnmarshalBinary(data []byte) error {
	r, err := newReader(data, tagUnmaskRequest, "unmask request")
	if err != nil {
		return err
	}
	var d UnmaskRequest
	d.Round = r.u64()
	d.Survivors = readIDs(r, "survivors")
	d.Dropped = readIDs(r, "dropped")
	if err := r.done(); err != nil {
		return err
	}
	*m = d
	return nil
}

// ---- UnmaskResponse ----

const revealedSize = 4 + 1 + shareSize

// MarshalBinary encodes the message.
func (m *UnmaskResponse) MarshalBinary() ([]byte, error) {
	b := header(tagUnmaskResponse, 2+8+4+4+revealedSize*len(m.Shares))
	b = binary.BigEndian.AppendUint64(b, m.Round)
	b = binary.BigEndian.AppendUint32(b, m.From)
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Shares)))
	for i := range m.Shares {
		b = binary.BigEndian.AppendUint32(b, m.Shares[i].Owner)
		b = append(b, uint8(m.Shares[i].Kind))
		b = append(b, m.Shares[i].Value[:]...)
	}
	return b, nil
}

// UnmarshalBinary decodes a message written by MarshalBinary.
func (m *UnmaskResponse) UnmarshalBinary(data []byte) error {
	r, err := newReader(data, tagUnmaskResponse, "unmask response")
	if err != nil {
		return err
	}
	var d UnmaskResponse
	d.Round = r.u64()
	d.From = r.u32()
	if n := r.count(revealedSize, "revealed shares"); n > 0 {
		d.Shares = make([]RevealedShare, n)
		for i := range d.Shares {
			d.Shares[i].Owner = r.u32()
			d.Shares[i].Kind = ShareKind(r.u8())
			copy(d.Shares[i].Value[:], r.bytes(shareSize))
			if k := d.Shares[i].Kind; r.err == nil && k != SelfMaskShare && k != MaskKeyShare {
				r.fail("share %d has unknown kind %d", i, uint8(k))
			}
		}
	}
	if err := r.done(); err != nil {
		return err
	}
	*m = d
	return nil
}
