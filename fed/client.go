package fed

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/aggregate"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/secure"
)

// Conn is a client's connection to the coordinator: gRPC over mutually
// authenticated TLS (DialGRPC) or a direct in-memory link (MemoryConn).
type Conn interface {
	Join(ctx context.Context, req *fedpb.JoinRequest) (*fedpb.JoinResponse, error)
	NextRound(ctx context.Context, after uint64, wait time.Duration) (*fedpb.RoundAssignment, error)
	// Download returns a global adapter file and the digest the
	// coordinator announced for it.
	Download(ctx context.Context, version uint64) (file, digest []byte, err error)
	Upload(ctx context.Context, h *fedpb.UploadHeader, ciphertext []byte) (*fedpb.UploadReceipt, error)
	Status(ctx context.Context) (*fedpb.StatusResponse, error)
	// SecAgg sends one secure-aggregation step and waits up to
	// req.WaitMs for the stage's relay.
	SecAgg(ctx context.Context, req *fedpb.SecAggRequest) (*fedpb.SecAggResponse, error)
	Close() error
}

// Trainer fine-tunes a client's adapter locally for one round.
type Trainer interface {
	// Train trains local in place (a copy of the global adapter the client
	// owns for the call) with the round's settings.
	Train(ctx context.Context, local *adapter.Set, cfg *fedpb.RoundConfig) (TrainStats, error)
}

// ShapedTrainer is a Trainer whose client trains an adapter of its own
// shape — another rank or dA2 than the global's (a weak device, say) — in
// a federation aggregating with rule hetero-exact: TrainOwn starts from the
// global adapter (read-only), trains the client's own adapter and returns
// it; the client uploads it whole (EncodeWhole), not as a change.
type ShapedTrainer interface {
	Trainer
	TrainOwn(ctx context.Context, global *adapter.Set, cfg *fedpb.RoundConfig) (*adapter.Set, TrainStats, error)
}

// TrainStats is what a round of local training reports.
type TrainStats struct {
	Examples int     // training examples used: the aggregation weight
	Loss     float64 // mean training loss
	Accuracy float64 // validation accuracy after training (0 when not measured)
}

// RoundReport is one completed client round.
type RoundReport struct {
	Round     uint64
	Stats     TrainStats
	WireBytes uint64 // ciphertext bytes uploaded
	RawBytes  uint64 // the same update as float32
	// PayloadBytes is the quantized update before encryption.
	PayloadBytes uint64
	Train        time.Duration
}

// ClientConfig configures a client.
type ClientConfig struct {
	Name    string
	Conn    Conn
	Trainer Trainer
	// Model and Adapter identify what the client trains (adapter.Set
	// BaseModel and Config.String()); the coordinator checks them.
	Model, Adapter string
	// ModelDigest is "sha256:HEX" of the client's base model files
	// (train.ModelDigest), checked by a coordinator that knows its own.
	ModelDigest string
	Examples    int64
	Capability  string
	// Key signs uploads (the key of the client's certificate); Recipient
	// (the coordinator's) encrypts them; Verifier checks the coordinator's
	// signature on round assignments.
	Key       crypto.Signer
	Recipient age.Recipient
	Verifier  *secure.Verifier
	// Rounds to take part in before returning (0: until the federation
	// finishes or ctx ends).
	Rounds int
	// PollWait is how long one NextRound call may wait (default 10 s).
	PollWait time.Duration
	// Heartbeat is how often the client calls in while it trains (default
	// 15 s; negative: never), so that a coordinator with a lease shorter
	// than the training knows it is alive — and closes a round at quorum
	// without waiting for members that went silent.
	Heartbeat time.Duration
	Logger    *slog.Logger
	Now       func() time.Time
	// OnRound, when set, is called after each acknowledged upload.
	OnRound func(RoundReport)
	// Globals, when set, is shared by clients in one process (the
	// simulator) so each global version is downloaded, checked and decoded
	// once and held once: clients only read it.
	Globals *GlobalCache
	// Slots, when set, bounds how many clients sharing it train at once
	// (the simulator: one per core). A client takes a slot before it copies
	// the global adapter and gives it back once its upload is encoded, so
	// a thousand waiting clients hold no adapter copies.
	Slots chan struct{}
}

// GlobalCache holds the newest decoded global adapter for clients in one
// process.
type GlobalCache struct {
	mu      sync.Mutex
	version uint64
	digest  []byte
	set     *adapter.Set
}

func (g *GlobalCache) get(version uint64, digest []byte) *adapter.Set {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.set != nil && g.version == version && bytes.Equal(g.digest, digest) {
		return g.set
	}
	return nil
}

func (g *GlobalCache) put(version uint64, digest []byte, set *adapter.Set) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if version >= g.version {
		g.version, g.digest, g.set = version, digest, set
	}
}

// Client takes part in a federation: the ClientMachine driven by real
// operations on a Conn.
type Client struct {
	cfg ClientConfig
	log *slog.Logger
	m   *ClientMachine

	global   *adapter.Set // cached global adapter
	version  uint64
	prepared *preparedUpload
	sa       *clientSecAgg // the open secure-aggregation round
	trainDur time.Duration
	stats    TrainStats
}

type preparedUpload struct {
	round   uint64
	payload int
	header  *fedpb.UploadHeader
	ct      []byte
}

// NewClient checks cfg and makes a client.
func NewClient(cfg ClientConfig) (*Client, error) {
	switch {
	case cfg.Name == "":
		return nil, errors.New("client: no name")
	case cfg.Conn == nil || cfg.Trainer == nil:
		return nil, errors.New("client: a connection and a trainer are required")
	case cfg.Key == nil || cfg.Recipient == nil || cfg.Verifier == nil:
		return nil, errors.New("client: a signing key, the coordinator's recipient and its verification key are required")
	case cfg.Examples <= 0:
		return nil, fmt.Errorf("client: examples %d must be positive", cfg.Examples)
	}
	if cfg.PollWait <= 0 {
		cfg.PollWait = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg, log: cfg.Logger.With("client", cfg.Name), m: NewClientMachine(cfg.Rounds)}, nil
}

// Rounds is how many rounds the client has uploaded.
func (c *Client) Rounds() int { return c.m.Rounds() }

// Run takes part in rounds until the configured number is uploaded, the
// federation finishes (nil), a fatal error, or ctx ends.
func (c *Client) Run(ctx context.Context) error {
	act := c.m.Start()
	for {
		if act.Note != "" {
			c.log.Warn("round skipped", "round", act.After, "why", act.Note)
		}
		if act.Backoff > 0 {
			jitter := time.Duration(mrand.Int64N(int64(act.Backoff)/2 + 1))
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(act.Backoff + jitter):
			}
		}
		if act.Phase == ClientStopped {
			return act.Err
		}
		ev := c.do(ctx, act)
		if err := ctx.Err(); err != nil {
			return err
		}
		if f, ok := ev.(Failed); ok && f.Class != SkipRound && f.Class != Done {
			c.log.Warn("operation failed", "phase", act.Phase, "class", f.Class, "err", f.Err)
		}
		act = c.m.Step(ev)
	}
}

func (c *Client) do(ctx context.Context, act ClientAction) ClientEvent {
	switch act.Phase {
	case ClientJoining:
		resp, err := c.cfg.Conn.Join(ctx, &fedpb.JoinRequest{Model: c.cfg.Model, Adapter: c.cfg.Adapter,
			Examples: c.cfg.Examples, Capability: c.cfg.Capability, ModelDigest: c.cfg.ModelDigest})
		if err != nil {
			return c.failed(act.Phase, err)
		}
		c.log.Info("joined", "coordinator", resp.Coordinator, "round", resp.Round, "global_version", resp.GlobalVersion)
		return Joined{Resp: resp}
	case ClientPolling:
		a, err := c.cfg.Conn.NextRound(ctx, act.After, c.cfg.PollWait)
		if err != nil {
			return c.failed(act.Phase, err)
		}
		if a.Round == 0 {
			return Assigned{Assignment: a, Now: c.cfg.Now()}
		}
		if err := c.checkAssignment(a); err != nil {
			return Failed{Class: Fatal, Err: err}
		}
		c.log.Info("selected", "round", a.Round, "global_version", a.GlobalVersion, "remaining", time.Duration(a.RemainingMs)*time.Millisecond)
		return Assigned{Assignment: a, Now: c.cfg.Now()}
	case ClientFetching:
		a := act.Assignment
		if c.global != nil && c.version == a.GlobalVersion {
			return Fetched{}
		}
		if c.cfg.Globals != nil {
			if set := c.cfg.Globals.get(a.GlobalVersion, a.GlobalDigest); set != nil {
				c.global, c.version = set, a.GlobalVersion
				return Fetched{}
			}
		}
		file, _, err := c.cfg.Conn.Download(ctx, a.GlobalVersion)
		if err != nil {
			return c.failed(act.Phase, err)
		}
		if !bytes.Equal(Digest(file), a.GlobalDigest) || uint64(len(file)) != a.GlobalSize {
			return Failed{Class: SkipRound, Err: fmt.Errorf("global adapter version %d does not match the signed digest in round %d's assignment", a.GlobalVersion, a.Round)}
		}
		set, _, err := DecodeAdapter(file)
		if err != nil {
			return Failed{Class: SkipRound, Err: fmt.Errorf("global adapter version %d: %w", a.GlobalVersion, err)}
		}
		set.ReleaseGrads() // the base of every local training, which trains a Clone
		c.global, c.version = set, a.GlobalVersion
		if c.cfg.Globals != nil {
			c.cfg.Globals.put(a.GlobalVersion, a.GlobalDigest, set)
		}
		return Fetched{}
	case ClientKeying:
		return c.keying(ctx, act.Assignment)
	case ClientUnmasking:
		return c.unmasking(ctx, act.Assignment)
	case ClientTraining:
		return c.train(ctx, act.Assignment)
	case ClientUploading:
		p := c.prepared
		if p == nil || p.round != act.Assignment.Round {
			return Failed{Class: SkipRound, Err: errors.New("no prepared upload")}
		}
		r, err := c.cfg.Conn.Upload(ctx, p.header, p.ct)
		if err != nil {
			return c.failed(act.Phase, err)
		}
		c.log.Info("uploaded", "round", r.Round, "wire_bytes", len(p.ct), "raw_bytes", p.header.RawBytes,
			"accepted", r.Accepted, "loss", c.stats.Loss)
		if c.cfg.OnRound != nil {
			c.cfg.OnRound(RoundReport{Round: p.round, Stats: c.stats, WireBytes: uint64(len(p.ct)), RawBytes: p.header.RawBytes,
				PayloadBytes: uint64(p.payload), Train: c.trainDur})
		}
		c.prepared = nil
		return Uploaded{Receipt: r}
	}
	return Failed{Class: Fatal, Err: fmt.Errorf("client: unknown phase %q", act.Phase)}
}

// checkAssignment verifies the coordinator's signature and that the round
// trains what this client holds.
func (c *Client) checkAssignment(a *fedpb.RoundAssignment) error {
	if err := c.cfg.Verifier.Verify(AssignmentSigningBytes(a), a.Signature); err != nil {
		return fmt.Errorf("round %d assignment: coordinator signature: %w", a.Round, err)
	}
	if a.Model != c.cfg.Model || a.Adapter != c.cfg.Adapter {
		return fmt.Errorf("round %d trains %s on %q; this client holds %s on %q", a.Round, a.Adapter, a.Model, c.cfg.Adapter, c.cfg.Model)
	}
	if a.Config == nil {
		return fmt.Errorf("round %d assignment has no training config", a.Round)
	}
	if err := validateRoundConfig(a.Config); err != nil {
		return fmt.Errorf("round %d assignment: %w", a.Round, err)
	}
	return nil
}

// train runs local training and prepares the upload: the update
// Δ = local − global, quantized, encrypted to the coordinator and signed.
func (c *Client) train(ctx context.Context, a *fedpb.RoundAssignment) ClientEvent {
	if c.cfg.Slots != nil {
		select {
		case c.cfg.Slots <- struct{}{}:
		case <-ctx.Done():
			return Failed{Class: Fatal, Err: ctx.Err()}
		}
		defer func() { <-c.cfg.Slots }()
	}
	local := c.global.Clone()
	start := time.Now()
	stopHeartbeat := c.heartbeat(ctx)
	var stats TrainStats
	var err error
	shaped, whole := c.cfg.Trainer.(ShapedTrainer)
	if whole {
		local, stats, err = shaped.TrainOwn(ctx, c.global, a.Config)
	} else {
		stats, err = c.cfg.Trainer.Train(ctx, local, a.Config)
	}
	stopHeartbeat()
	if err != nil {
		if ctx.Err() != nil {
			return Failed{Class: Fatal, Err: ctx.Err()}
		}
		return Failed{Class: SkipRound, Err: fmt.Errorf("local training in round %d: %w", a.Round, err)}
	}
	c.trainDur, c.stats = time.Since(start), stats
	if stats.Examples <= 0 {
		return Failed{Class: SkipRound, Err: fmt.Errorf("local training in round %d used no examples", a.Round)}
	}
	h := fnv.New64a()
	h.Write([]byte(c.cfg.Name))
	rng := mrand.New(mrand.NewPCG(a.Config.Seed, h.Sum64()))
	if whole { // a client of its own shape uploads its whole adapter
		switch {
		case a.Secagg != nil:
			return Failed{Class: SkipRound, Err: fmt.Errorf("round %d: a client of its own adapter shape cannot mask its upload for secure aggregation", a.Round)}
		case a.Config.LocalNoise > 0:
			return Failed{Class: SkipRound, Err: fmt.Errorf("round %d: local DP noises a change of the global, not a whole adapter of the client's own shape", a.Round)}
		}
		payload, err := EncodeWhole(c.global, local, a.Round, c.cfg.Name, a.GlobalVersion, int(a.Config.Bits), rng)
		if err != nil {
			return Failed{Class: SkipRound, Err: err}
		}
		return c.prepare(a, payload, local, stats)
	}
	delta := local.Sub(c.global) // the round's update Δ = local − global, in local's storage
	if rc := a.Config; rc.LocalNoise > 0 {
		if err := c.addLocalNoise(delta, rc, h.Sum64()); err != nil {
			return Failed{Class: SkipRound, Err: fmt.Errorf("round %d local DP: %w", a.Round, err)}
		}
	}
	var payload []byte
	if a.Secagg != nil {
		if c.sa == nil || c.sa.round != a.Round || c.sa.bundle == nil {
			return Failed{Class: SkipRound, Err: fmt.Errorf("round %d: trained without a finished key exchange", a.Round)}
		}
		var cut int
		if payload, cut, err = c.maskedUpdate(delta, rng); err != nil {
			return Failed{Class: SkipRound, Err: fmt.Errorf("round %d masked input: %w", a.Round, err)}
		}
		if cut > 0 {
			c.log.Warn("update coordinates clipped to the secure-aggregation range", "round", a.Round, "clipped", cut, "range", a.Secagg.Range)
		}
	} else if payload, err = EncodeUpdate(c.global, delta, a.Round, c.cfg.Name, a.GlobalVersion, int(a.Config.Bits), rng); err != nil {
		return Failed{Class: SkipRound, Err: err}
	}
	return c.prepare(a, payload, delta, stats)
}

// prepare encrypts and signs a round's payload (sent stands for its tensors,
// for the header's raw size) as the upload to send.
func (c *Client) prepare(a *fedpb.RoundAssignment, payload []byte, sent *adapter.Set, stats TrainStats) ClientEvent {
	ct, err := secure.Encrypt(c.cfg.Recipient, payload)
	if err != nil {
		return Failed{Class: Fatal, Err: err}
	}
	nonce := make([]byte, NonceSize)
	rand.Read(nonce)
	hd := &fedpb.UploadHeader{Round: a.Round, Client: c.cfg.Name, BaseVersion: a.GlobalVersion, Examples: int64(stats.Examples),
		Size: uint64(len(ct)), Digest: Digest(ct), Nonce: nonce, RawBytes: RawBytes(sent), TrainLoss: stats.Loss, ValAccuracy: stats.Accuracy}
	if hd.Signature, err = secure.SignWithKey(c.cfg.Key, UploadSigningBytes(hd)); err != nil {
		return Failed{Class: Fatal, Err: err}
	}
	c.prepared = &preparedUpload{round: a.Round, payload: len(payload), header: hd, ct: ct}
	return Trained{Now: c.cfg.Now()}
}

// addLocalNoise is local DP: the update delta (local − global) is clipped
// to the round's norm and noised in place (aggregate.AddLocalNoise) before
// it leaves the client.
func (c *Client) addLocalNoise(delta *adapter.Set, rc *fedpb.RoundConfig, nameHash uint64) error {
	src := aggregate.CryptoNoise()
	if rc.LocalNoiseSeeded {
		src = aggregate.SeededNoise(rc.Seed ^ nameHash)
	}
	norm, clipped, err := aggregate.AddLocalNoise(delta, rc.LocalClip, rc.LocalNoise, src)
	if err != nil {
		return err
	}
	c.log.Info("local DP", "norm", norm, "clipped", clipped, "clip", rc.LocalClip, "noise_multiplier", rc.LocalNoise, "seeded", rc.LocalNoiseSeeded)
	return nil
}

// DefaultHeartbeat is how often a training client calls in.
const DefaultHeartbeat = 15 * time.Second

// heartbeat calls Status every cfg.Heartbeat until the returned stop is
// called. A failed heartbeat is only logged: the upload is what counts.
func (c *Client) heartbeat(ctx context.Context) (stop func()) {
	every := c.cfg.Heartbeat
	if every < 0 {
		return func() {}
	}
	if every == 0 {
		every = DefaultHeartbeat
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if _, err := c.cfg.Conn.Status(ctx); err != nil && ctx.Err() == nil {
					c.log.Debug("heartbeat", "err", err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// FetchLatest downloads the coordinator's current global adapter — after
// the last round, the federation's result, which no assignment carries —
// and checks it: the file matches the digest the coordinator sends with
// it, and it is an adapter of the federation's model and configuration.
// It returns the file as published and its version.
func (c *Client) FetchLatest(ctx context.Context) (file []byte, version uint64, err error) {
	st, err := c.cfg.Conn.Status(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("ask for the current global version: %w", err)
	}
	file, digest, err := c.cfg.Conn.Download(ctx, st.GlobalVersion)
	if err != nil {
		return nil, 0, fmt.Errorf("download global adapter version %d: %w", st.GlobalVersion, err)
	}
	if !bytes.Equal(Digest(file), digest) {
		return nil, 0, fmt.Errorf("global adapter version %d does not match its digest", st.GlobalVersion)
	}
	set, _, err := DecodeAdapter(file)
	if err != nil {
		return nil, 0, fmt.Errorf("global adapter version %d: %w", st.GlobalVersion, err)
	}
	if set.BaseModel != c.cfg.Model || set.Config.String() != c.cfg.Adapter {
		return nil, 0, fmt.Errorf("global adapter version %d is %s on %q, this client trains %s on %q",
			st.GlobalVersion, set.Config, set.BaseModel, c.cfg.Adapter, c.cfg.Model)
	}
	return file, st.GlobalVersion, nil
}

// IsHandshakeError reports whether err is a TLS handshake with the
// coordinator that failed on a certificate (an unknown CA, an expired or
// revoked certificate, a clock far off, a TLS alert from the coordinator):
// retrying cannot help, so callers stop and show it. gRPC reports these
// only as Unavailable with the TLS error in the message. A handshake cut
// off by the network ("authentication handshake failed: ... connection
// reset by peer", EOF, refused: the coordinator restarting) is not one of
// them: that is retried like any other unavailability. (`client join`
// probes the certificates first, see ProbeTLS.)
func IsHandshakeError(err error) bool {
	st, ok := status.FromError(err)
	if !ok || st.Code() != codes.Unavailable {
		return false
	}
	msg := st.Message()
	return strings.Contains(msg, "tls: ") || strings.Contains(msg, "x509: ")
}

// failed classifies an operation's error for the state machine.
func (c *Client) failed(phase ClientPhase, err error) ClientEvent {
	if IsHandshakeError(err) {
		return Failed{Class: Fatal, Err: err}
	}
	if refusalReason(err) == ReasonUndecryptable {
		// Every upload would be refused the same way: retrying cannot help.
		return Failed{Class: Fatal, Err: fmt.Errorf("%w (this client encrypts to another coordinator's key: its bundle is not this federation's; enroll it again with `coordinator enroll`)", err)}
	}
	if refusalReason(err) == ReasonTooLarge {
		// The same update would be refused again: give up this round.
		return Failed{Class: SkipRound, Err: fmt.Errorf("%w (the coordinator's upload limit is below this update: upload fewer bits or a smaller adapter)", err)}
	}
	if refusalReason(err) == ReasonUpdateNorm {
		return Failed{Class: SkipRound, Err: fmt.Errorf("%w (the coordinator bounds each update's norm: a smaller learning rate or fewer local steps keep it under; the operator sets rounds.max_update_norm)", err)}
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.Unavailable, codes.Aborted, codes.Internal, codes.Unknown, codes.ResourceExhausted, codes.Canceled:
		return Failed{Class: Retry, Err: err}
	case codes.DeadlineExceeded:
		if phase == ClientUploading {
			return Failed{Class: SkipRound, Err: err}
		}
		return Failed{Class: Retry, Err: err}
	case codes.OutOfRange:
		return Failed{Class: Done, Err: err}
	case codes.NotFound:
		if phase == ClientPolling {
			return Failed{Class: Rejoin, Err: err}
		}
		return Failed{Class: SkipRound, Err: err}
	case codes.Unauthenticated:
		return Failed{Class: Fatal, Err: err}
	}
	if phase == ClientJoining {
		return Failed{Class: Fatal, Err: err}
	}
	return Failed{Class: SkipRound, Err: err}
}
