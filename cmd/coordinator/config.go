package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/internal/cli"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/train"
)

// serveConfig is `coordinator serve --config FILE`: a TOML file. Relative
// paths in it are relative to the file's folder.
type serveConfig struct {
	Name    string `toml:"name"`
	Dir     string `toml:"dir"`     // from `coordinator init` (required)
	Store   string `toml:"store"`   // default <dir>/state.db
	Listen  string `toml:"listen"`  // gRPC host:port (default 127.0.0.1:7070)
	Metrics string `toml:"metrics"` // Prometheus host:port ("" disables)
	// MetricsTLS serves /metrics over TLS to operator certificates only
	// (enroll --operator --pem-dir gives a scraper its PEM files).
	MetricsTLS bool   `toml:"metrics_tls"`
	Gossip     string `toml:"gossip"` // memberlist bind host:port ("" disables)
	// Seeds are gossip addresses to join (other coordinators' or clients').
	Seeds []string `toml:"seeds"`
	// MaxInFlightMB bounds the upload bytes received at once, all clients
	// together, in MiB (0: 16 uploads' worth, at least 64 MiB).
	MaxInFlightMB int `toml:"max_inflight_mb"`
	// KeepUploads is how many recent rounds' encrypted uploads the store
	// keeps (0: 2), so `coordinator verify` can replay them; KeepGlobals
	// how many global versions (0: 10).
	KeepUploads int           `toml:"keep_uploads"`
	KeepGlobals int           `toml:"keep_globals"`
	Adapter     adapterConfig `toml:"adapter"`
	Rounds      roundsConfig  `toml:"rounds"`
	Train       trainConfig   `toml:"train"`
	DP          dpConfig      `toml:"dp"`
	SecAgg      secAggConfig  `toml:"secure_aggregation"`
}

// secAggConfig is secure aggregation, SecAgg+ (off unless enabled).
type secAggConfig struct {
	Enabled bool `toml:"enabled"`
	// Range bounds every coordinate of an update (0: learning rate × local
	// steps).
	Range        float64 `toml:"range"`
	Neighbours   int     `toml:"neighbours"`    // 0: 2⌈log2 n⌉
	Threshold    int     `toml:"threshold"`     // 0: ⌊k/2⌋ + 1 + ⌊k/8⌋
	KeyAgreement string  `toml:"key_agreement"` // x25519 or xwing
	StageTimeout string  `toml:"stage_timeout"` // default: a quarter of rounds.timeout
}

// dpConfig is client-level differential privacy (off unless enabled).
type dpConfig struct {
	Enabled  bool    `toml:"enabled"`
	Clip     float64 `toml:"clip"`
	Noise    float64 `toml:"noise"`
	Adaptive bool    `toml:"adaptive"`
	Budget   float64 `toml:"budget"` // ε budget (0: none)
	Delta    float64 `toml:"delta"`
	// Local: clients clip and noise their own updates (local DP).
	Local bool `toml:"local"`
	// Accountant: rdp (default) or pld (needs rounds.sampling = "poisson").
	Accountant string `toml:"accountant"`
}

type adapterConfig struct {
	// File is an adapter file to start from (from `client init` or an
	// earlier run); else Model is loaded and fresh adapters put on it.
	File    string  `toml:"file"`
	Model   string  `toml:"model"`
	Kind    string  `toml:"kind"`
	Rank    int     `toml:"rank"`
	DA2     int     `toml:"dA2"`
	Alpha   float64 `toml:"alpha"`
	Dropout float64 `toml:"dropout"`
	Seed    uint64  `toml:"seed"`
	// ModelDigest is "sha256:HEX" of the base model files clients must
	// hold (train.ModelDigest, which `client join` prints): computed from
	// Model when given (and then checked against this), taken from here
	// when the federation starts from an adapter File. Empty with a File:
	// clients' models are not checked.
	ModelDigest string `toml:"model_digest"`
}

// modelDigest is the federation's base model digest ("" when unknown).
func (a adapterConfig) modelDigest() (string, error) {
	if a.Model == "" {
		if a.ModelDigest != "" && !strings.HasPrefix(a.ModelDigest, "sha256:") {
			return "", fmt.Errorf("adapter.model_digest %q: want sha256:HEX (client join prints it)", a.ModelDigest)
		}
		return a.ModelDigest, nil
	}
	d, err := train.ModelDigest(a.Model)
	if err != nil {
		return "", err
	}
	if a.ModelDigest != "" && a.ModelDigest != d {
		return "", fmt.Errorf("adapter.model_digest %s differs from %s's files (%s)", a.ModelDigest, a.Model, d)
	}
	return d, nil
}

type roundsConfig struct {
	Rounds     int     `toml:"rounds"`
	Cohort     int     `toml:"cohort"`
	Fraction   float64 `toml:"fraction"`
	MinClients int     `toml:"min_clients"`
	// StartClients: clients needed before the first round (default min_clients).
	StartClients int `toml:"start_clients"`
	// MaxExamples bounds the examples a client may claim, its FedAvg weight
	// (default: train.max_items when set, else about a million).
	MaxExamples int64 `toml:"max_examples"`
	// MaxUpdateNorm refuses an update whose L2 norm exceeds it (0: none).
	MaxUpdateNorm float64 `toml:"max_update_norm"`
	Quorum        int     `toml:"quorum"`
	Timeout       string  `toml:"timeout"`
	// Lease: how long a client stays selectable after last heard from
	// (default: timeout + 1m; "0s": no lease; at least 30s, two heartbeats
	// of a training client). A round closes at quorum once the members that
	// have not uploaded are silent for longer than it.
	Lease string `toml:"lease"`
	// RejoinGrace: after a restart, how long the first new round waits for
	// the last round's clients to call again (default 15s; "0s": not at all).
	RejoinGrace string `toml:"rejoin_grace"`
	Seed        uint64 `toml:"seed"`
	Rule        string `toml:"rule"`
	// Sampling: fixed (default: cohort clients, or fraction of them, drawn
	// without replacement) or poisson (each client joins a round with
	// probability fraction).
	Sampling string `toml:"sampling"`
}

type trainConfig struct {
	Epochs   int     `toml:"epochs"`
	Batch    int     `toml:"batch"`
	LR       float64 `toml:"lr"`
	Bits     int     `toml:"bits"`
	MaxItems int     `toml:"max_items"`
	Seed     uint64  `toml:"seed"`
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		Name: "coordinator", Listen: "127.0.0.1:7070",
		Adapter: adapterConfig{Kind: "kron", Rank: 8, Alpha: 32, Dropout: 0.1, Seed: 1},
		Rounds:  roundsConfig{Rounds: 10, Cohort: 0, Fraction: 1, Timeout: "5m", Seed: 1, Rule: "fedavg"},
		Train:   trainConfig{Epochs: 1, Batch: 8, LR: 3e-4, Bits: 8, Seed: 1},
		DP:      dpConfig{Clip: 1, Delta: 1e-5},
		SecAgg:  secAggConfig{KeyAgreement: "x25519"},
	}
}

// loadServeConfig reads path over the defaults, refusing unknown keys.
func loadServeConfig(path string) (serveConfig, error) {
	c := defaultServeConfig()
	if err := cli.DecodeTOML(path, &c); err != nil {
		return c, err
	}
	base := filepath.Dir(path)
	for _, p := range []*string{&c.Dir, &c.Store, &c.Adapter.File, &c.Adapter.Model} {
		if p == &c.Adapter.Model && *p == model.BuiltinPath {
			continue // the built-in model is a name, not a file
		}
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	if c.Dir == "" {
		return c, fmt.Errorf("config %s: dir (the folder made by `coordinator init`) is required", path)
	}
	if c.Store == "" {
		c.Store = filepath.Join(c.Dir, "state.db")
	}
	if c.KeepUploads < 0 || c.KeepGlobals < 0 || (c.KeepGlobals > 0 && c.KeepGlobals < 2) {
		return c, fmt.Errorf("config %s: keep_uploads %d / keep_globals %d: want 0 (the default) or a count (keep_globals at least 2: the current version and the one clients may still fetch)", path, c.KeepUploads, c.KeepGlobals)
	}
	if c.MaxInFlightMB < 0 || c.MaxInFlightMB > 1<<20 {
		return c, fmt.Errorf("config %s: max_inflight_mb %d is outside 0 (the default) to 1048576", path, c.MaxInFlightMB)
	}
	return c, nil
}

// policy turns the rounds and train sections into the state machine's policy.
func (c serveConfig) policy() (fed.Policy, fed.Rule, error) {
	timeout, err := time.ParseDuration(c.Rounds.Timeout)
	if err != nil {
		return fed.Policy{}, fed.Rule{}, fmt.Errorf("rounds.timeout %q: %w", c.Rounds.Timeout, err)
	}
	rule, err := fed.ParseRule(c.Rounds.Rule)
	if err != nil {
		return fed.Policy{}, fed.Rule{}, fmt.Errorf("rounds.rule: %w", err)
	}
	t := c.Train
	if t.Epochs < 0 || t.Batch < 0 || t.MaxItems < 0 || t.Bits < 0 {
		return fed.Policy{}, fed.Rule{}, errors.New("train: epochs, batch, bits and max_items must not be negative")
	}
	lease := timeout + time.Minute
	if c.Rounds.Lease != "" {
		if lease, err = time.ParseDuration(c.Rounds.Lease); err != nil {
			return fed.Policy{}, fed.Rule{}, fmt.Errorf("rounds.lease %q: %w", c.Rounds.Lease, err)
		}
		if lease > 0 && lease < 2*fed.DefaultHeartbeat {
			return fed.Policy{}, fed.Rule{}, fmt.Errorf("rounds.lease %v is shorter than two client heartbeats (%v): clients still training would count as gone", lease, 2*fed.DefaultHeartbeat)
		}
	}
	grace := 15 * time.Second
	if c.Rounds.RejoinGrace != "" {
		if grace, err = time.ParseDuration(c.Rounds.RejoinGrace); err != nil || grace < 0 {
			return fed.Policy{}, fed.Rule{}, fmt.Errorf("rounds.rejoin_grace %q: want a duration ≥ 0 (%v)", c.Rounds.RejoinGrace, err)
		}
	}
	p := fed.Policy{Lease: lease, RejoinGrace: grace,
		Rounds: c.Rounds.Rounds, CohortSize: c.Rounds.Cohort, Fraction: c.Rounds.Fraction, MinClients: c.Rounds.MinClients,
		StartClients: c.Rounds.StartClients, MaxExamples: c.Rounds.MaxExamples, MaxUpdateNorm: c.Rounds.MaxUpdateNorm,
		Quorum: c.Rounds.Quorum, RoundTimeout: timeout, Seed: c.Rounds.Seed, Sampling: c.Rounds.Sampling,
		Train: &fedpb.RoundConfig{LocalEpochs: uint32(t.Epochs), BatchSize: uint32(t.Batch), LearningRate: t.LR,
			Bits: uint32(t.Bits), Seed: t.Seed, MaxItems: uint32(t.MaxItems)},
	}
	if c.DP.Enabled {
		p.DP = &fed.DPPolicy{Clip: c.DP.Clip, Noise: c.DP.Noise, Adaptive: c.DP.Adaptive, Epsilon: c.DP.Budget, Delta: c.DP.Delta,
			Local: c.DP.Local, Accountant: c.DP.Accountant}
	}
	if sa := c.SecAgg; sa.Enabled {
		ka, err := fed.ParseKeyAgreement(sa.KeyAgreement)
		if err != nil {
			return fed.Policy{}, fed.Rule{}, fmt.Errorf("secure_aggregation.key_agreement: %w", err)
		}
		p.SecAgg = &fed.SecAggPolicy{Range: sa.Range, Neighbours: sa.Neighbours, Threshold: sa.Threshold, KeyAgreement: ka}
		if sa.StageTimeout != "" {
			if p.SecAgg.StageTimeout, err = time.ParseDuration(sa.StageTimeout); err != nil {
				return fed.Policy{}, fed.Rule{}, fmt.Errorf("secure_aggregation.stage_timeout %q: %w", sa.StageTimeout, err)
			}
		}
	}
	if err := p.Validate(); err != nil {
		return fed.Policy{}, fed.Rule{}, err
	}
	// The rule against DP and secure aggregation (the adapter's kind is
	// checked when the federation's adapter is made).
	if err := rule.Check("", p); err != nil {
		return fed.Policy{}, fed.Rule{}, fmt.Errorf("rounds.rule: %w", err)
	}
	return p, rule, nil
}

// initialAdapter is the federation's starting global adapter.
func (c serveConfig) initialAdapter() (*adapter.Set, error) {
	a := c.Adapter
	if a.File != "" {
		if a.Model != "" {
			return nil, errors.New("adapter: give file or model, not both")
		}
		return adapter.ReadFile(a.File)
	}
	if a.Model == "" {
		return nil, errors.New("adapter: give file (an adapter file) or model (a base model to put fresh adapters on)")
	}
	m, err := train.LoadModel(a.Model)
	if err != nil {
		return nil, err
	}
	ac, err := adapterFromFields(a.Kind, a.Rank, a.DA2, a.Alpha, a.Dropout)
	if err != nil {
		return nil, err
	}
	return train.NewAdapterSet(m, ac, a.Seed)
}

// adapterFromFields builds and validates an adapter config.
func adapterFromFields(kind string, rank, dA2 int, alpha, dropout float64) (adapter.Config, error) {
	k, err := adapter.ParseKind(kind)
	if err != nil {
		return adapter.Config{}, err
	}
	ac := adapter.DefaultConfig(k) // Validate refuses dA2 on LoRA
	ac.Rank, ac.DA2, ac.Alpha, ac.Dropout = rank, dA2, float32(alpha), float32(dropout)
	return ac, ac.Validate()
}
