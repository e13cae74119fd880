package fed

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"filippo.io/age"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/aggregate"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/secure"
	"github.com/kronfed/kronfed/store"
)

// Peer is the authenticated caller of a coordinator method: its name and
// public key come from its verified TLS certificate (gRPC) or from the
// simulator that created it (in-memory transport), never from a message.
type Peer struct {
	Name      string
	PublicKey crypto.PublicKey
	CertDER   []byte
	// Operator: the certificate is an operator's (secure.RoleOperator),
	// which sees the full status and does not train.
	Operator bool
}

// ServerConfig configures a coordinator.
type ServerConfig struct {
	// Name is the coordinator's name, reported to clients.
	Name   string
	Policy Policy
	Rule   Rule
	// Store holds the durable state; a new store is initialized with
	// Initial as global version 1.
	Store   *store.Store
	Initial *adapter.Set
	// ModelDigest, when set, is "sha256:HEX" of the federation's base model
	// files (train.ModelDigest): a client joining with another digest, or
	// none, is refused.
	ModelDigest string
	// Identity decrypts uploads (age); Signer signs round assignments.
	Identity age.Identity
	Signer   *secure.Signer
	Logger   *slog.Logger
	Metrics  *Metrics
	// Now is the clock (default time.Now); TickEvery how often Run ticks
	// the state machine (default 100 ms).
	Now       func() time.Time
	TickEvery time.Duration
	// MaxUploadBytes caps one upload's ciphertext (default: 4× the float32
	// size of the global adapter plus 1 MiB).
	MaxUploadBytes int64
	// MaxInFlightBytes bounds the upload bytes being received at once, all
	// clients together (default: 16 uploads of MaxUploadBytes, at least
	// 64 MiB; never below MaxUploadBytes). An upload beyond it is told
	// ResourceExhausted before its body is read, and retries.
	MaxInFlightBytes int64
	// Results is how many round results Status reports (default 20).
	Results int
	// CacheBytes bounds the decoded client adapters kept in memory between
	// acceptance and aggregation (default 1 GiB); uploads beyond it are
	// decrypted and decoded again from the store when the round closes.
	CacheBytes int64
	// KeepUploads is how many recent rounds' encrypted uploads stay in the
	// store (default 2); KeepGlobals how many global adapter versions
	// (default 10, at least 2: the current one and the one clients may
	// still be fetching).
	KeepUploads, KeepGlobals int
}

// Server is the coordinator: the round state machine driven by a clock,
// with durable storage, payload verification and aggregation around it.
// Transports (gRPC, in-memory) call its methods with an authenticated Peer.
type Server struct {
	cfg ServerConfig
	// Uploads admitted by their header and not yet finished: bytes by
	// client, their sum and its high-water mark (AdmitUpload).
	inflight                   map[string]int64
	inflightBytes, inflightMax int64
	log                        *slog.Logger
	met                        *Metrics
	store                      *store.Store
	strategy                   aggregate.Strategy

	mu         sync.Mutex
	m          *CoordinatorMachine
	cur        *publishedGlobal // the current global adapter (version m.State().GlobalVersion)
	prev       *publishedGlobal // the one before, still downloadable
	assignment *fedpb.RoundAssignment
	changed    chan struct{} // closed and replaced on every state change
	results    []*fedpb.RoundResult
	finished   bool
	// decoded holds the current round's accepted client adapters, already
	// decrypted and checked, so aggregation need not redo it.
	decoded      map[string]*adapter.Set
	decodedRound uint64
	decodedBytes int64

	noise aggregate.NoiseSource // DP noise, made once
	// sa is the open round's secure aggregation (Policy.SecAgg), and
	// saJob its aggregation, held until the survivors have unmasked.
	sa    *secAggRound
	saJob *StartAggregation

	aggWG sync.WaitGroup
	aggCh chan StartAggregation
}

// NewServer opens the coordinator's state: from the store when it holds
// one (a restart), else a new federation starting from cfg.Initial.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("coordinator: no store")
	}
	if cfg.Identity == nil || cfg.Signer == nil {
		return nil, errors.New("coordinator: an age identity and a signing key are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TickEvery <= 0 {
		cfg.TickEvery = 100 * time.Millisecond
	}
	if cfg.Results <= 0 {
		cfg.Results = 20
	}
	if cfg.CacheBytes <= 0 {
		cfg.CacheBytes = 1 << 30
	}
	if cfg.KeepUploads <= 0 {
		cfg.KeepUploads = 2
	}
	if cfg.KeepGlobals <= 0 {
		cfg.KeepGlobals = 10
	}
	cfg.KeepGlobals = max(cfg.KeepGlobals, 2)
	if cfg.Name == "" {
		cfg.Name = "coordinator"
	}
	s := &Server{cfg: cfg, log: cfg.Logger, met: cfg.Metrics, store: cfg.Store, changed: make(chan struct{}), aggCh: make(chan StartAggregation, 1)}

	raw, ok, err := s.store.State()
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	var st State
	var optimizer []byte // the server optimizer's state at the current version
	if ok {
		if st, err = UnmarshalState(raw); err != nil {
			return nil, fmt.Errorf("coordinator: %s: %w", s.store.Path(), err)
		}
		if s.cur, optimizer, err = s.loadGlobal(st.GlobalVersion); err != nil {
			return nil, fmt.Errorf("coordinator: %w", err)
		}
		if st.GlobalVersion > 1 {
			if s.prev, _, err = s.loadGlobal(st.GlobalVersion - 1); err != nil {
				s.prev = nil // pruned: only the current version is served
			}
		}
		if cfg.Initial != nil && (cfg.Initial.BaseModel != s.cur.set.BaseModel || cfg.Initial.Config != s.cur.set.Config) {
			return nil, fmt.Errorf("coordinator: the store %s holds a federation of %s on %q, not %s on %q",
				s.store.Path(), s.cur.set.Config, s.cur.set.BaseModel, cfg.Initial.Config, cfg.Initial.BaseModel)
		}
		s.log.Info("resumed", "store", s.store.Path(), "round", st.Round, "phase", st.Phase, "global_version", st.GlobalVersion, "accepted", len(st.Accepted))
	} else {
		if cfg.Initial == nil {
			return nil, fmt.Errorf("coordinator: the store %s is empty and no initial adapter was given", s.store.Path())
		}
		st = State{Phase: PhaseIdle, GlobalVersion: 1}
		if s.cur, err = newGlobal(1, 0, cfg.Initial); err != nil {
			return nil, fmt.Errorf("coordinator: initial adapter: %w", err)
		}
		sb, err := MarshalState(st)
		if err == nil {
			err = s.putGlobal(s.cur, nil, sb)
		}
		if err != nil {
			return nil, err
		}
		s.log.Info("new federation", "store", s.store.Path(), "model", cfg.Initial.BaseModel, "adapter", cfg.Initial.Config.String())
	}
	if dp := cfg.Policy.DP; dp != nil {
		if dp.SeededNoise {
			s.noise = aggregate.SeededNoise(dp.Seed)
			s.log.Warn("DP noise is seeded: reproducible but NOT private (simulation only)")
		} else {
			s.noise = aggregate.CryptoNoise()
		}
	}
	if s.strategy, err = cfg.Rule.Strategy(s.cur.set.Config.Kind, cfg.Policy, s.noise); err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	// A restarted coordinator continues the server optimizer where the
	// current version left it, not from zero moments.
	dropped, err := s.strategy.Restore(optimizer, s.cur.set)
	if err != nil {
		return nil, fmt.Errorf("coordinator: global adapter version %d: %w", s.cur.version, err)
	}
	if dropped {
		s.log.Warn("the stored server optimizer state is not used by this rule: dropped", "rule", cfg.Rule.String(), "global_version", s.cur.version)
	}
	if s.cfg.MaxUploadBytes <= 0 {
		s.cfg.MaxUploadBytes = 4*int64(RawBytes(s.cur.set)) + 1<<20
	}
	if s.cfg.MaxInFlightBytes <= 0 {
		s.cfg.MaxInFlightBytes = max(16*s.cfg.MaxUploadBytes, 64<<20)
	}
	s.cfg.MaxInFlightBytes = max(s.cfg.MaxInFlightBytes, s.cfg.MaxUploadBytes)
	s.inflight = map[string]int64{}
	if s.m, err = NewCoordinatorMachine(cfg.Policy, st); err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	if err := s.checkStoredUploads(st); err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	if err := s.store.Rounds(0, func(round uint64, rec []byte) error {
		var r fedpb.RoundResult
		if err := proto.Unmarshal(rec, &r); err != nil {
			return fmt.Errorf("round %d result: %w", round, err)
		}
		s.pushResult(&r)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	if st.Phase == PhaseCollecting && cfg.Policy.SecAgg == nil {
		s.assignment = s.signAssignment(st) // a secure-aggregation round is abandoned by Resume
	}
	s.met.Round.Set(float64(st.Round))
	s.met.GlobalVersion.Set(float64(st.GlobalVersion))
	return s, nil
}

// Run drives the coordinator until ctx ends or the configured rounds are
// published (then it returns nil). It resumes an interrupted aggregation
// first.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		s.aggWG.Wait()
	}()
	s.aggWG.Add(1)
	go func() {
		defer s.aggWG.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case job := <-s.aggCh:
				s.aggregate(ctx, job)
			}
		}
	}()
	s.mu.Lock()
	s.handle(s.m.Resume())
	s.mu.Unlock()
	t := time.NewTicker(s.cfg.TickEvery)
	defer t.Stop()
	for {
		s.mu.Lock()
		s.step(func() []Effect { return s.m.Tick(s.cfg.Now()) })
		s.secAggTick()
		done := s.finished
		s.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// step runs one state-machine transition under s.mu, persists the state if
// it changed, and handles the effects. A failed write rolls the machine
// back, so memory never runs ahead of disk.
func (s *Server) step(fn func() []Effect) {
	effects := fn()
	if err := s.commit(s.store.SaveState); err != nil {
		s.log.Error("persist state; transition undone", "err", err)
		return
	}
	s.handle(effects)
}

// commit is the one persist-or-roll-back path: when the machine's state
// changed (Ready), write hands it, marshalled, to the store together with
// whatever must be durable in the same transaction (an accepted upload, a
// new global adapter); the machine then advances, or rolls back when the
// write failed, so memory never runs ahead of disk.
func (s *Server) commit(write func(state []byte) error) error {
	st, persist := s.m.Ready()
	if !persist {
		return nil
	}
	b, err := MarshalState(st)
	if err == nil {
		err = write(b)
	}
	if err != nil {
		s.m.Rollback()
		return err
	}
	s.m.Advance()
	return nil
}

// handle performs effects; s.mu is held.
func (s *Server) handle(effects []Effect) {
	for _, e := range effects {
		switch e := e.(type) {
		case StartRound:
			st := s.m.State()
			if s.cfg.Policy.SecAgg != nil {
				if err := s.startSecAgg(st); err != nil {
					s.log.Error("secure aggregation setup", "round", e.Round, "err", err)
					s.step(func() []Effect { return s.m.Abandon(e.Round, "secure aggregation: "+err.Error()) })
					continue
				}
			}
			s.assignment = s.signAssignment(st)
			s.met.Round.Set(float64(e.Round))
			s.log.Info("round started", "round", e.Round, "cohort", e.Cohort, "eligible", e.Eligible,
				"seed", s.cfg.Policy.Seed, "deadline", e.Deadline.UTC().Format(time.RFC3339), "global_version", e.GlobalVersion)
		case StartAggregation:
			s.assignment = nil
			s.log.Info("uploads closed", "round", e.Round, "uploads", len(e.Uploads))
			if s.sa != nil && s.sa.round == e.Round {
				// The survivors unmask first; secAggTick queues the job.
				if err := s.sa.closeInput(s.cfg.Now()); err != nil {
					s.log.Warn("secure aggregation cannot complete", "round", e.Round, "err", err)
					s.step(func() []Effect { return s.m.AggregationFailed(e.Round, "secure aggregation: "+err.Error()) })
					continue
				}
				job := e
				s.saJob = &job
				s.log.Info("secure aggregation: unmasking", "round", e.Round, "survivors", len(e.Uploads))
				continue
			}
			select {
			case s.aggCh <- e:
			default:
				s.log.Error("aggregation already queued", "round", e.Round)
			}
		case RoundAbandoned:
			s.assignment, s.sa, s.saJob = nil, nil, nil
			s.decoded, s.decodedBytes = nil, 0
			st := s.m.State()
			s.met.Rounds.WithLabelValues("abandoned").Inc()
			s.recordResult(&fedpb.RoundResult{Round: e.Round, Outcome: "abandoned: " + e.Reason, GlobalVersion: st.GlobalVersion,
				FinishedUnixMs: s.cfg.Now().UnixMilli()}, st)
			s.log.Warn("round abandoned", "round", e.Round, "reason", e.Reason)
		case RoundPublished:
			s.decoded, s.decodedBytes = nil, 0
			s.sa, s.saJob = nil, nil
			s.prune(e.Round)
			s.met.Rounds.WithLabelValues("published").Inc()
			s.met.GlobalVersion.Set(float64(e.Version))
			s.log.Info("round published", "round", e.Round, "global_version", e.Version)
		case BudgetExhausted:
			s.finished = true
			s.log.Warn("privacy budget reached: no more rounds", "epsilon", e.Epsilon, "next_round_epsilon", e.Next, "budget", e.Budget)
		case AllPublished:
			s.finished = true
			if st := s.m.State(); st.Stopped != "" {
				s.log.Warn("federation stopped earlier: no more rounds", "reason", st.Stopped, "rounds", st.Published)
			} else {
				s.log.Info("all rounds published", "rounds", st.Published)
			}
		}
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) signAssignment(st State) *fedpb.RoundAssignment {
	rc := proto.Clone(s.cfg.Policy.Train).(*fedpb.RoundConfig)
	rc.Seed = RoundSeed(rc.Seed, st.Round)
	if dp := s.cfg.Policy.DP; dp != nil && dp.Local {
		rc.LocalNoise, rc.LocalClip, rc.LocalNoiseSeeded = dp.Noise, st.Clip, dp.SeededNoise
	}
	a := &fedpb.RoundAssignment{Round: st.Round, GlobalVersion: st.GlobalVersion, GlobalDigest: s.cur.digest,
		GlobalSize: uint64(len(s.cur.file)), Config: rc, DeadlineUnixMs: st.Deadline.UnixMilli(),
		Model: s.cur.set.BaseModel, Adapter: s.cur.set.Config.String()}
	if s.sa != nil && s.sa.round == st.Round {
		a.Secagg = s.sa.setup
	}
	a.Signature = s.cfg.Signer.Sign(AssignmentSigningBytes(a))
	return a
}

// RoundSeed derives round's training seed (RoundConfig.Seed as clients
// receive it) from the configured one. A trainer that needs to know which
// round it is in can match its seed against RoundSeed(base, round).
func RoundSeed(seed, round uint64) uint64 {
	x := seed ^ (round * 0x9e3779b97f4a7c15)
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	return x ^ x>>29
}

// Join registers peer for rounds.
func (s *Server) Join(ctx context.Context, peer Peer, req *fedpb.JoinRequest) (*fedpb.JoinResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.cur.set
	switch {
	case req.Model != g.BaseModel:
		return nil, status.Errorf(codes.FailedPrecondition, "base model %q does not match the federation's %q", req.Model, g.BaseModel)
	case s.cfg.ModelDigest != "" && req.ModelDigest != s.cfg.ModelDigest:
		got := req.ModelDigest
		if got == "" {
			got = "none sent"
		}
		return nil, status.Errorf(codes.FailedPrecondition, "base model files differ: the federation's %s are %s, this client's %s; every client needs the identical model files",
			g.BaseModel, s.cfg.ModelDigest, got)
	case req.Adapter != "" && req.Adapter != g.Config.String():
		return nil, status.Errorf(codes.FailedPrecondition, "adapter %q does not match the federation's %q", req.Adapter, g.Config.String())
	case req.Examples <= 0:
		return nil, status.Errorf(codes.InvalidArgument, "examples %d: a client needs at least one training example", req.Examples)
	case req.Examples > s.cfg.Policy.JoinExampleBound():
		return nil, status.Errorf(codes.InvalidArgument, "examples %d exceed the bound of %d a client may claim (rounds.max_examples)", req.Examples, s.cfg.Policy.JoinExampleBound())
	case len(req.Capability) > 256:
		return nil, status.Errorf(codes.InvalidArgument, "capability is %d bytes, at most 256", len(req.Capability))
	}
	s.step(func() []Effect { s.m.Join(s.cfg.Now(), peer.Name, req.Examples, req.Capability); return nil })
	s.updateMemberGauge()
	st := s.m.State()
	s.log.Info("client joined", "client", peer.Name, "examples", req.Examples, "capability", req.Capability)
	return &fedpb.JoinResponse{Coordinator: s.cfg.Name, Round: st.Round, GlobalVersion: st.GlobalVersion,
		Model: g.BaseModel, Adapter: g.Config.String()}, nil
}

func (s *Server) updateMemberGauge() {
	n := 0
	for _, m := range s.m.Members() {
		if m.Live {
			n++
		}
	}
	s.met.Members.Set(float64(n))
}

// MemberDown tells the coordinator a client failed or left (from the
// gossip layer).
func (s *Server) MemberDown(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.step(func() []Effect { return s.m.MemberDown(s.cfg.Now(), name) })
	s.updateMemberGauge()
	s.log.Info("client down", "client", name)
}

// NextRound waits up to wait for peer to be selected into a round after
// afterRound and returns its signed assignment (round 0: none yet).
func (s *Server) NextRound(ctx context.Context, peer Peer, afterRound uint64, wait time.Duration) (*fedpb.RoundAssignment, error) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		if !s.m.IsMember(peer.Name) {
			s.mu.Unlock()
			return nil, status.Errorf(codes.NotFound, "client %s has not joined (call Join first)", peer.Name)
		}
		s.m.Seen(s.cfg.Now(), peer.Name)
		a, ch, done := s.assignment, s.changed, s.finished
		if a != nil && a.Round > afterRound && s.m.InCohort(peer.Name) {
			out := proto.Clone(a).(*fedpb.RoundAssignment)
			out.RemainingMs = max(0, a.DeadlineUnixMs-s.cfg.Now().UnixMilli())
			s.mu.Unlock()
			return out, nil
		}
		s.mu.Unlock()
		if done {
			return nil, status.Error(codes.OutOfRange, "the federation has finished its rounds")
		}
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-timer.C:
			return &fedpb.RoundAssignment{}, nil
		case <-ch:
		}
	}
}

// Global returns a downloadable global adapter version (the current one or
// the one before it).
func (s *Server) Global(version uint64) (file, digest []byte, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range []*publishedGlobal{s.cur, s.prev} {
		if g != nil && g.version == version {
			return g.file, g.digest, nil
		}
	}
	return nil, nil, status.Errorf(codes.NotFound, "global adapter version %d is not served (current %d)", version, s.cur.version)
}

// MaxUploadBytes is the largest ciphertext an upload may carry.
func (s *Server) MaxUploadBytes() int64 { return s.cfg.MaxUploadBytes }

// StatusFor is Status as peer may see it, and a sign of life from it (a
// client calls Status every few seconds while it trains, so that its lease
// does not lapse). An operator sees everything; a client sees the
// federation's progress and its own part, not who else is in it (members,
// cohorts, uploaders and each round's clients are left out, except the
// client itself).
func (s *Server) StatusFor(peer Peer) *fedpb.StatusResponse {
	s.mu.Lock()
	s.m.Seen(s.cfg.Now(), peer.Name)
	s.mu.Unlock()
	st := s.Status()
	if peer.Operator {
		return st
	}
	self := func(names []string) []string {
		if slices.Contains(names, peer.Name) {
			return []string{peer.Name}
		}
		return nil
	}
	st.Cohort, st.Accepted = self(st.Cohort), self(st.Accepted)
	st.Members = slices.DeleteFunc(st.Members, func(m *fedpb.Member) bool { return m.Name != peer.Name })
	for _, r := range st.Results {
		r.Clients = self(r.Clients)
	}
	return st
}

// Status reports the coordinator's state.
func (s *Server) Status() *fedpb.StatusResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.m.State()
	out := &fedpb.StatusResponse{Coordinator: s.cfg.Name, Model: s.cur.set.BaseModel, Adapter: s.cur.set.Config.String(),
		Round: st.Round, Phase: string(st.Phase), GlobalVersion: st.GlobalVersion, Cohort: st.Cohort}
	if st.Phase == PhaseCollecting {
		out.DeadlineUnixMs = st.Deadline.UnixMilli()
	}
	for _, r := range st.Accepted {
		out.Accepted = append(out.Accepted, r.Client)
	}
	if dp := s.cfg.Policy.DP; dp != nil {
		out.Epsilon, out.Delta, out.EpsilonBudget = st.Epsilon, dp.Delta, dp.Epsilon
	}
	out.SecureAggregation = s.cfg.Policy.SecAgg != nil
	for _, m := range s.m.Members() {
		out.Members = append(out.Members, &fedpb.Member{Name: m.Name, Examples: m.Examples, Capability: m.Capability,
			Live: m.Live, LastSeenUnixMs: m.LastSeen.UnixMilli()})
	}
	for _, r := range s.results {
		out.Results = append(out.Results, proto.Clone(r).(*fedpb.RoundResult))
	}
	return out
}

// Stopped says why the federation stopped before its configured rounds
// (the privacy budget), or "" while it may run on.
func (s *Server) Stopped() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m.State().Stopped
}

// Changed returns a channel closed at the next state change (for tests and
// the simulator).
func (s *Server) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// StoredGlobal returns a published global adapter version from the store
// (versions older than the retention setting are gone).
func (s *Server) StoredGlobal(version uint64) (*adapter.Set, error) {
	g, _, err := s.loadGlobal(version)
	if err != nil {
		return nil, err
	}
	return g.set, nil
}

// GlobalAdapter returns the current global adapter and its version.
func (s *Server) GlobalAdapter() (*adapter.Set, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur.set.Clone(), s.cur.version
}
