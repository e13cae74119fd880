package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"unicode/utf8"

	"github.com/hashicorp/memberlist"
)

// Role is the part a node plays in the federation.
type Role string

const (
	// RoleCoordinator selects cohorts, aggregates and publishes global adapters.
	RoleCoordinator Role = "coordinator"
	// RoleClient trains locally and uploads updates.
	RoleClient Role = "client"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool { return r == RoleCoordinator || r == RoleClient }

// MetaMaxSize is the largest encoded Meta memberlist carries (its
// MetaMaxSize, 512 bytes).
const MetaMaxSize = memberlist.MetaMaxSize

// MetaVersion is the version of the Meta encoding written by this package.
// Encode writes it when Meta.Version is zero.
const MetaVersion = 1

// ErrMetaTooLarge is returned (wrapped) by Encode and DecodeMeta when the
// encoded metadata exceeds MetaMaxSize.
var ErrMetaTooLarge = errors.New("metadata exceeds memberlist's limit")

// Meta is what a node publishes to the cluster through gossip. It is
// advisory: it helps the coordinator pick a cohort and tells clients where
// the coordinator's gRPC endpoint is, but it is not authenticated per node
// (anyone holding the cluster key can publish anything) and never grants the
// right to upload; that is decided by the TLS client certificate at the gRPC
// layer.
type Meta struct {
	Role Role `json:"role"`
	// GRPC is the host:port of the coordinator's gRPC service, or empty.
	GRPC string `json:"grpc,omitempty"`
	// Model is the identity of the frozen base model (e.g. a name or digest).
	Model string `json:"model,omitempty"`
	// Adapter names the adapter (or its configuration) the node works on.
	Adapter string `json:"adapter,omitempty"`
	// Examples is the number of local training examples (clients).
	Examples int `json:"examples,omitempty"`
	// Capability describes the node's compute, e.g. "cpu:2" or "cuda:H200".
	Capability string `json:"cap,omitempty"`
	// Version is the version of this metadata encoding (MetaVersion); zero
	// means "current" when encoding. Decoders accept any version >= 1 and
	// ignore fields they do not know, so newer nodes can add fields.
	Version int `json:"v"`
}

// Encode returns the JSON form of m, checking it as DecodeMeta would and
// refusing encodings larger than MetaMaxSize.
func (m Meta) Encode() ([]byte, error) {
	if m.Version == 0 {
		m.Version = MetaVersion
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("cluster: encode meta: %w", err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // keep "<" and "&" one byte; the limit is tight
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("cluster: encode meta: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > MetaMaxSize {
		return nil, fmt.Errorf("cluster: encode meta: %w: %d bytes, limit %d (shorten model, adapter or capability)",
			ErrMetaTooLarge, len(b), MetaMaxSize)
	}
	return b, nil
}

// DecodeMeta parses metadata published by a peer. It is strict about what it
// understands: the input must be valid UTF-8 JSON of at most MetaMaxSize
// bytes, the role must be known, examples non-negative, the version at least
// 1 and the gRPC address, when present, a host:port. Unknown fields are
// ignored (forward compatibility).
func DecodeMeta(b []byte) (Meta, error) {
	var m Meta
	switch {
	case len(b) == 0:
		return Meta{}, errors.New("cluster: decode meta: empty metadata")
	case len(b) > MetaMaxSize:
		return Meta{}, fmt.Errorf("cluster: decode meta: %w: %d bytes, limit %d", ErrMetaTooLarge, len(b), MetaMaxSize)
	case !utf8.Valid(b):
		return Meta{}, errors.New("cluster: decode meta: not valid UTF-8")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return Meta{}, fmt.Errorf("cluster: decode meta: %w", err)
	}
	if err := m.check(); err != nil {
		return Meta{}, fmt.Errorf("cluster: decode meta: %w", err)
	}
	return m, nil
}

// check validates the fields of an encoded or decoded Meta.
func (m Meta) check() error {
	if !m.Role.Valid() {
		return fmt.Errorf("unknown role %q (want %q or %q)", m.Role, RoleCoordinator, RoleClient)
	}
	if m.Examples < 0 {
		return fmt.Errorf("negative examples %d", m.Examples)
	}
	if m.Version < 1 {
		return fmt.Errorf("missing or invalid version %d (want >= 1)", m.Version)
	}
	if m.GRPC != "" {
		if err := checkHostPort(m.GRPC); err != nil {
			return fmt.Errorf("grpc address %q: %w", m.GRPC, err)
		}
	}
	return nil
}

// checkHostPort accepts "host:port" with a non-empty host and a port in 1..65535.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("missing host")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return fmt.Errorf("invalid port %q", port)
	}
	return nil
}
