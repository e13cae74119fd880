package fed

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/adapter/quant"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/safetensors"
)

// NonceSize is the length of an upload's random nonce.
const NonceSize = 16

// UploadScheme is how updates are quantized before upload: symmetric
// (updates are centred on zero), one scale per row — per column for tall
// factors such as B1 (adapter.FactorScheme) — and stochastic rounding so the
// aggregate of many clients' updates stays unbiased.
func UploadScheme(bits int) quant.Scheme {
	return quant.Scheme{Bits: bits, Symmetric: true, PerRow: true, Stochastic: true}
}

// canon builds the canonical byte strings that are signed: a domain label,
// then every field length-prefixed, so no two different messages encode the
// same and a signature for one kind of message never verifies as another.
type canon []byte

func newCanon(label string) canon { return canon(append([]byte(label), 0)) }

func (c canon) u64(v uint64) canon   { return binary.BigEndian.AppendUint64(c, v) }
func (c canon) i64(v int64) canon    { return c.u64(uint64(v)) }
func (c canon) f64(v float64) canon  { return c.u64(math.Float64bits(v)) }
func (c canon) bytes(b []byte) canon { return append(c.u64(uint64(len(b))), b...) }
func (c canon) str(s string) canon   { return c.bytes([]byte(s)) }

// AssignmentSigningBytes is what the coordinator signs for a round
// assignment: every field but remaining_ms (which changes per answer) and
// the signature itself.
func AssignmentSigningBytes(a *fedpb.RoundAssignment) []byte {
	c := newCanon("kronfed/round-assignment/v1").u64(a.Round).u64(a.GlobalVersion).bytes(a.GlobalDigest).
		u64(a.GlobalSize).i64(a.DeadlineUnixMs).str(a.Model).str(a.Adapter)
	if rc := a.Config; rc != nil {
		c = c.u64(uint64(rc.LocalEpochs)).u64(uint64(rc.BatchSize)).f64(rc.LearningRate).u64(uint64(rc.Bits)).
			u64(rc.Seed).u64(uint64(rc.MaxItems))
		if rc.LocalNoise != 0 || rc.LocalClip != 0 || rc.LocalNoiseSeeded {
			c = c.str("local-dp").f64(rc.LocalNoise).f64(rc.LocalClip)
			if rc.LocalNoiseSeeded {
				c = c.u64(1)
			}
		}
	}
	return c.secAggSetup(a.Secagg)
}

// UploadSigningBytes is what a client signs for an upload: every header
// field but the signature. The digest binds the ciphertext, so the signature
// covers the payload too.
func UploadSigningBytes(h *fedpb.UploadHeader) []byte {
	return newCanon("kronfed/upload/v1").u64(h.Round).str(h.Client).u64(h.BaseVersion).i64(h.Examples).
		u64(h.Size).bytes(h.Digest).bytes(h.Nonce).u64(h.RawBytes).f64(h.TrainLoss).f64(h.ValAccuracy)
}

// EncodeAdapter writes set as an adapter file in memory (the format of
// adapter.WriteFile), with extra metadata keys added.
func EncodeAdapter(set *adapter.Set, opts adapter.SaveOptions, extra map[string]string) ([]byte, error) {
	meta, tensors, err := set.Encode(opts)
	if err != nil {
		return nil, err
	}
	for k, v := range extra {
		if _, clash := meta[k]; clash {
			return nil, fmt.Errorf("metadata key %q is reserved", k)
		}
		meta[k] = v
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, meta, tensors); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeAdapter parses an adapter file held in memory and returns it with
// its metadata.
func DecodeAdapter(data []byte) (*adapter.Set, map[string]string, error) {
	f, err := safetensors.Parse(data)
	if err != nil {
		return nil, nil, err
	}
	set, err := adapter.Decode(f)
	if err != nil {
		return nil, nil, err
	}
	return set, f.Metadata(), nil
}

// RawBytes is the size of a Set's tensors as float32: what an upload would
// cost without quantization.
func RawBytes(set *adapter.Set) uint64 {
	n := 0
	for _, p := range set.Params() {
		n += p.Rows * p.Cols
	}
	return uint64(4 * n)
}

// Update metadata keys bind a payload to its round, client and base version
// inside the encryption, so a payload cannot be moved between uploads.
const (
	metaRound   = "kronfed_round"
	metaClient  = "kronfed_client"
	metaBase    = "kronfed_base_version"
	metaPayload = "kronfed_payload"
)

// EncodeUpdate is the client's side of an upload: its change delta
// (local − global, of the global adapter's shape), quantized to bits
// (stochastic rounding driven by rng; 32 sends float32), as an adapter file
// bound to (round, client, base). Dense tensors (task heads) always travel
// as float32.
func EncodeUpdate(global, delta *adapter.Set, round uint64, client string, base uint64, bits int, rng *rand.Rand) ([]byte, error) {
	if err := global.SameShape(delta); err != nil {
		return nil, fmt.Errorf("encode update: %w", err)
	}
	return encodeUpload(delta, payloadUpdate, round, client, base, bits, rng)
}

// EncodeWhole is the upload of a client that trains an adapter of its own
// shape (a ShapedTrainer, rule hetero-exact): the whole adapter own, not a
// change, of the global's kind and layers but its own rank and dA2.
func EncodeWhole(global, own *adapter.Set, round uint64, client string, base uint64, bits int, rng *rand.Rand) ([]byte, error) {
	if err := sameLayers(global, own); err != nil {
		return nil, fmt.Errorf("encode adapter: %w", err)
	}
	return encodeUpload(own, payloadWhole, round, client, base, bits, rng)
}

// The payload kinds of an upload: a change of the global's shape, or a
// client's whole adapter of its own shape.
const (
	payloadUpdate = "update"
	payloadWhole  = "adapter"
)

func encodeUpload(set *adapter.Set, kind string, round uint64, client string, base uint64, bits int, rng *rand.Rand) ([]byte, error) {
	opts := adapter.SaveOptions{Bits: 32}
	if bits != 32 {
		opts = adapter.SaveOptions{Bits: bits, Scheme: UploadScheme(bits), Rng: rng}
	}
	payload, err := EncodeAdapter(set, opts, map[string]string{
		metaPayload: kind, metaRound: strconv.FormatUint(round, 10), metaClient: client, metaBase: strconv.FormatUint(base, 10),
	})
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", kind, err)
	}
	return payload, nil
}

// sameLayers checks that own adapts the global's layers with the global's
// kind, whatever its rank and dA2.
func sameLayers(global, own *adapter.Set) error {
	switch {
	case own.Config.Kind != global.Config.Kind:
		return fmt.Errorf("adapter kind %s, the federation trains %s", own.Config.Kind, global.Config.Kind)
	case len(own.Modules) != len(global.Modules) || len(own.Dense) != len(global.Dense):
		return fmt.Errorf("%d modules and %d dense tensors, the federation's adapter has %d and %d", len(own.Modules), len(own.Dense), len(global.Modules), len(global.Dense))
	}
	for i, m := range own.Modules {
		do, di := m.Layer.Dims()
		go_, gi := global.Modules[i].Layer.Dims()
		if m.Name != global.Modules[i].Name || do != go_ || di != gi {
			return fmt.Errorf("module %d is %s %d×%d, the federation's %s %d×%d", i, m.Name, do, di, global.Modules[i].Name, go_, gi)
		}
	}
	for i, d := range own.Dense {
		if d.Name != global.Dense[i].Name || len(d.Data) != len(global.Dense[i].Data) {
			return fmt.Errorf("dense tensor %s of %d values, the federation's %s has %d", d.Name, len(d.Data), global.Dense[i].Name, len(global.Dense[i].Data))
		}
	}
	return nil
}

// DecodeUpdate is the coordinator's side: it parses a decrypted payload,
// checks that it is an upload for (round, client, base) of the global
// adapter's base model and bit width and returns it: with whole false the
// client's dequantized change Δ of the global's exact shape (what the
// aggregation strategies take); with whole true (rule hetero-exact) the
// client's whole adapter, of the global's kind and layers and its own rank
// and dA2 — sent whole, or as a change of the global by a client of the
// global's own shape (returned as global + Δ).
func DecodeUpdate(payload []byte, global *adapter.Set, round uint64, client string, base uint64, bits int, whole bool) (*adapter.Set, error) {
	set, meta, err := DecodeAdapter(payload)
	if err != nil {
		return nil, fmt.Errorf("update payload: %w", err)
	}
	kind := meta[metaPayload]
	switch {
	case kind == payloadWhole && !whole:
		return nil, fmt.Errorf("update payload: a whole adapter, but this federation trains one shape and takes changes of the global (only rule hetero-exact takes whole adapters)")
	case kind != payloadWhole:
		kind = payloadUpdate // a change of the global, in either kind of federation
	}
	want := map[string]string{metaPayload: kind, metaRound: strconv.FormatUint(round, 10), metaClient: client,
		metaBase: strconv.FormatUint(base, 10), "bits": strconv.Itoa(bits)}
	for k, v := range want {
		if meta[k] != v {
			return nil, fmt.Errorf("update payload: metadata %s = %q, want %q", k, meta[k], v)
		}
	}
	if set.BaseModel != global.BaseModel {
		return nil, fmt.Errorf("update payload: base model %q, the federation trains %q", set.BaseModel, global.BaseModel)
	}
	if kind == payloadWhole {
		if err := sameLayers(global, set); err != nil {
			return nil, fmt.Errorf("update payload: %w", err)
		}
	} else {
		if set.Config != global.Config {
			return nil, fmt.Errorf("update payload: adapter %v, the federation trains %v", set.Config, global.Config)
		}
		if err := global.SameShape(set); err != nil {
			return nil, fmt.Errorf("update payload: %w", err)
		}
	}
	if err := set.CheckFinite(); err != nil {
		return nil, fmt.Errorf("update payload: %w", err)
	}
	if whole && kind == payloadUpdate {
		// A client of the federation's own shape sends its change: its whole
		// adapter is the global plus it.
		return global.Clone().Add(set), nil
	}
	return set, nil
}

// Digest is the SHA-256 of b.
func Digest(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
