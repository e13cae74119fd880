package cluster

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// Profiles select memberlist's timing presets.
const (
	// ProfileLAN is memberlist.DefaultLANConfig: the default.
	ProfileLAN = "lan"
	// ProfileLocal is memberlist.DefaultLocalConfig: fast failure detection
	// for one machine or tests.
	ProfileLocal = "local"
	// ProfileWAN is memberlist.DefaultWANConfig: tolerant timeouts.
	ProfileWAN = "wan"
)

// Defaults used by DefaultConfig and by Create for zero fields.
const (
	DefaultBindAddr         = "0.0.0.0"
	DefaultPort             = 7946
	DefaultEvents           = 64
	DefaultLabel            = "kronfed"
	DefaultJoinBackoff      = 200 * time.Millisecond
	DefaultJoinBackoffMax   = 5 * time.Second
	DefaultBroadcastTimeout = 5 * time.Second
)

// Config configures a Node. Start from DefaultConfig and set Meta.Role and
// SecretKey at least. Create copies the Config; later changes have no effect.
type Config struct {
	// Name is the node's unique name in the cluster (required).
	Name string

	// BindAddr and BindPort are where gossip listens (TCP and UDP).
	// BindAddr must be an IP address; BindPort 0 picks a free port (see
	// Node.LocalAddr).
	BindAddr string
	BindPort int

	// AdvertiseAddr and AdvertisePort are what peers are told to use, when
	// they differ from the bind address (NAT, 0.0.0.0 binds). Empty/zero let
	// memberlist choose (a private address of the host; the bound port).
	AdvertiseAddr string
	AdvertisePort int

	// Meta is what this node publishes; Meta.Role is required.
	Meta Meta

	// SecretKey is the AES key (16, 24 or 32 bytes) shared by the whole
	// cluster: gossip is encrypted and authenticated with it, and nodes
	// without it cannot join. Required unless AllowInsecure.
	SecretKey []byte
	// AllowInsecure permits running without SecretKey (plaintext gossip;
	// anyone who can reach the port can join). For local experiments only.
	AllowInsecure bool

	// Label, when non-empty, is attached to every packet and checked on
	// receipt, so separate federations on one network cannot merge by
	// mistake. DefaultConfig sets DefaultLabel; all nodes must agree.
	Label string

	// Logger receives memberlist's log lines, mapped to slog levels, and this
	// package's own messages. nil means slog.Default().
	Logger *slog.Logger

	// Profile is ProfileLAN (default, also ""), ProfileLocal or ProfileWAN.
	Profile string

	// Events is the capacity of the Events channel (0 means DefaultEvents).
	Events int

	// JoinBackoff and JoinBackoffMax bound the wait between join attempts
	// (doubling, with jitter). Zero means the defaults.
	JoinBackoff    time.Duration
	JoinBackoffMax time.Duration

	// BroadcastTimeout bounds Leave and UpdateMeta when their context has no
	// deadline (zero means DefaultBroadcastTimeout).
	BroadcastTimeout time.Duration
}

// DefaultConfig returns a Config for a node named name, listening on
// 0.0.0.0:7946 with the LAN profile. The caller must still set Meta.Role and
// SecretKey (or AllowInsecure).
func DefaultConfig(name string) *Config {
	return &Config{
		Name:             name,
		BindAddr:         DefaultBindAddr,
		BindPort:         DefaultPort,
		Label:            DefaultLabel,
		Profile:          ProfileLAN,
		Events:           DefaultEvents,
		JoinBackoff:      DefaultJoinBackoff,
		JoinBackoffMax:   DefaultJoinBackoffMax,
		BroadcastTimeout: DefaultBroadcastTimeout,
	}
}

// GenerateKey returns a fresh 32-byte secret key from crypto/rand.
func GenerateKey() ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("cluster: generate key: %w", err)
	}
	return k, nil
}

// EncodeKey returns the standard base64 form of a key, as ParseKey reads it.
func EncodeKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// ParseKey decodes a base64 secret key (as written by EncodeKey, typically
// passed through the environment) and checks its length.
func ParseKey(s string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("cluster: parse key: not base64: %w", err)
	}
	if err := checkKey(k); err != nil {
		return nil, fmt.Errorf("cluster: parse key: %w", err)
	}
	return k, nil
}

func checkKey(k []byte) error {
	switch len(k) {
	case 16, 24, 32:
		return nil
	}
	return fmt.Errorf("secret key is %d bytes, want 16, 24 or 32 (AES-128/192/256)", len(k))
}

// resolved returns a copy of c with defaults filled in, or an error naming
// the first invalid field.
func (c *Config) resolved() (*Config, error) {
	if c == nil {
		return nil, errors.New("cluster: nil Config")
	}
	r := *c
	r.SecretKey = append([]byte(nil), c.SecretKey...)
	if r.Name == "" {
		return nil, errors.New("cluster: config: Name is required")
	}
	if r.BindAddr == "" {
		r.BindAddr = DefaultBindAddr
	}
	if net.ParseIP(r.BindAddr) == nil {
		return nil, fmt.Errorf("cluster: config: BindAddr %q is not an IP address", r.BindAddr)
	}
	if r.BindPort < 0 || r.BindPort > 65535 {
		return nil, fmt.Errorf("cluster: config: BindPort %d out of range 0..65535", r.BindPort)
	}
	if r.AdvertiseAddr != "" && net.ParseIP(r.AdvertiseAddr) == nil {
		return nil, fmt.Errorf("cluster: config: AdvertiseAddr %q is not an IP address", r.AdvertiseAddr)
	}
	if r.AdvertisePort < 0 || r.AdvertisePort > 65535 {
		return nil, fmt.Errorf("cluster: config: AdvertisePort %d out of range 0..65535", r.AdvertisePort)
	}
	if len(r.SecretKey) == 0 {
		if !r.AllowInsecure {
			return nil, errors.New("cluster: config: SecretKey is required (16, 24 or 32 bytes); set AllowInsecure only for local experiments")
		}
	} else if err := checkKey(r.SecretKey); err != nil {
		return nil, fmt.Errorf("cluster: config: %w", err)
	}
	if len(r.Label) > memberlist.LabelMaxSize {
		return nil, fmt.Errorf("cluster: config: Label is %d bytes, limit %d", len(r.Label), memberlist.LabelMaxSize)
	}
	switch r.Profile {
	case "":
		r.Profile = ProfileLAN
	case ProfileLAN, ProfileLocal, ProfileWAN:
	default:
		return nil, fmt.Errorf("cluster: config: unknown Profile %q (want %q, %q or %q)", r.Profile, ProfileLAN, ProfileLocal, ProfileWAN)
	}
	if r.Events < 0 {
		return nil, fmt.Errorf("cluster: config: Events %d is negative", r.Events)
	}
	if r.Events == 0 {
		r.Events = DefaultEvents
	}
	if r.JoinBackoff < 0 || r.JoinBackoffMax < 0 || r.BroadcastTimeout < 0 {
		return nil, errors.New("cluster: config: negative JoinBackoff, JoinBackoffMax or BroadcastTimeout")
	}
	if r.JoinBackoff == 0 {
		r.JoinBackoff = DefaultJoinBackoff
	}
	if r.JoinBackoffMax == 0 {
		r.JoinBackoffMax = DefaultJoinBackoffMax
	}
	r.JoinBackoffMax = max(r.JoinBackoffMax, r.JoinBackoff)
	if r.BroadcastTimeout == 0 {
		r.BroadcastTimeout = DefaultBroadcastTimeout
	}
	if r.Meta.Version == 0 {
		r.Meta.Version = MetaVersion
	}
	if _, err := r.Meta.Encode(); err != nil {
		return nil, fmt.Errorf("cluster: config: Meta: %w", err)
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	return &r, nil
}

// memberlistConfig builds memberlist's configuration from a resolved Config.
func (c *Config) memberlistConfig() *memberlist.Config {
	var mc *memberlist.Config
	switch c.Profile {
	case ProfileLocal:
		mc = memberlist.DefaultLocalConfig()
	case ProfileWAN:
		mc = memberlist.DefaultWANConfig()
	default:
		mc = memberlist.DefaultLANConfig()
	}
	mc.Name = c.Name
	mc.BindAddr = c.BindAddr
	mc.BindPort = c.BindPort
	mc.AdvertiseAddr = c.AdvertiseAddr
	mc.AdvertisePort = c.AdvertisePort
	if c.AdvertisePort == 0 {
		// memberlist advertises its AdvertisePort field as is; follow the
		// bind port (memberlist rewrites both when BindPort is 0).
		mc.AdvertisePort = c.BindPort
	}
	mc.Label = c.Label
	if len(c.SecretKey) > 0 {
		mc.SecretKey = append([]byte(nil), c.SecretKey...)
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	mc.LogOutput = nil
	mc.Logger = newMemberlistLogger(c.Logger.With("component", "memberlist", "node", c.Name))
	return mc
}
