// Package simulate runs federated experiments on one machine: a coordinator
// and many clients in one process, driving the very same fed state machines
// and coordinator server as a deployment (in-memory transport, real
// encryption, signatures and a real bbolt store), with one frozen base model
// shared read-only by every client, and the Kron-LoRA paper's
// sequential-task forgetting protocol on top.
package simulate

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/age"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/aggregate"
	"github.com/kronfed/kronfed/aggregate/audit"
	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/fedtrain"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/secure"
	"github.com/kronfed/kronfed/store"
	"github.com/kronfed/kronfed/task"
	"github.com/kronfed/kronfed/train"
)

// Options configure one simulated federation.
type Options struct {
	Model   *model.Model
	Adapter adapter.Config // resolved against the model by New
	Clients int
	// CohortSize clients per round, or Fraction of them when 0.
	CohortSize int
	Fraction   float64
	Rule       fed.Rule
	Train      *fedpb.RoundConfig
	// Partition is "iid" or "dirichlet:ALPHA".
	Partition string
	Seed      uint64
	// Dir holds the coordinator's store.
	Dir string
	// Workers bounds how many clients train at once (default: the CPUs; 1
	// on a GPU, where each training client holds its activations on the
	// device and their device work takes turns anyway).
	Workers int
	// Engine is where clients train and globals are scored (default
	// train.CPU: Model as it was prepared, fp32 or train.UsePrecision's). A GPU engine
	// (train.OpenEngine) holds one device copy of Model for every client,
	// each with its own adapters, activations and optimizer state; prepare
	// the base on it first (train.Engine.PrepareBase) so that a base that
	// does not fit fails before the federation starts.
	Engine *train.Engine
	// MaxLen is the encoders' pair length (default 128).
	MaxLen int
	// ValItems is how many validation items each client scores after its
	// local training (default 16).
	ValItems int
	// DP, when set, runs client-level DP-FedAvg (see fed.DPPolicy).
	DP *fed.DPPolicy
	// SecAgg, when set, runs every round as a secure aggregation (see
	// fed.SecAggPolicy).
	SecAgg *fed.SecAggPolicy
	// Transport is "memory" (default: direct calls) or "grpc": real gRPC
	// over mutually authenticated TLS 1.3 on loopback, with certificates
	// from a federation CA made in Dir.
	Transport string
	Logger    *slog.Logger
	// Sampling is how cohorts are drawn: fixed ("" too) or poisson (see
	// fed.Policy.Sampling; Fraction is then each client's probability).
	Sampling string
	// Canaries, when > 0, audits the run empirically (aggregate/audit):
	// that many canary clients join the population, each uploading its own
	// random unit direction times the clipping norm every round it is
	// sampled, and RoundInfo.Audit estimates ε from the published adapter.
	// Not with secure aggregation or local DP, where the method does not
	// apply; memory transport only.
	Canaries int
	// ClientRanks, when set, gives client i the rank ClientRanks[i%len]
	// (clients of different capacity): the global adapter keeps
	// Adapter.Rank, which must be the largest; a client takes each global
	// down to its rank by RankDown, trains it, and brings it back up
	// exactly (aggregate.WithRank). Use the kron-exact rule to sum the
	// clients' ΔW exactly, fedavg for HeteroLoRA's zero-padded factor
	// averaging.
	ClientRanks []int
	RankDown    aggregate.RankMethod
	// ClientDA2s, when set, gives client i the Kronecker dA2
	// ClientDA2s[i%len] (and its ClientRanks rank): a Kron-LoRA of one dA2
	// is not one of another, so these clients upload their whole adapters
	// and the rule must be hetero-exact, which sums their ΔW exactly and
	// re-fits the global; each client re-fits the global to its own shape
	// (aggregate.HeteroExact) before training.
	ClientDA2s []int
	// Uploads, when set, is told how many of the open round's cohort have
	// uploaded, each time that count grows (best effort: two uploads
	// landing together are one call). It runs on Phase's goroutine.
	Uploads func(accepted, cohort int)
}

// ParsePartition checks a partition spec: "iid" or "dirichlet:ALPHA".
func ParsePartition(s string) (alpha float64, iid bool, err error) {
	if s == "iid" {
		return 0, true, nil
	}
	if rest, ok := strings.CutPrefix(s, "dirichlet:"); ok {
		a, err := strconv.ParseFloat(rest, 64)
		if err != nil || !(a > 0) {
			return 0, false, fmt.Errorf("partition %q: alpha must be a positive number", s)
		}
		return a, false, nil
	}
	return 0, false, fmt.Errorf("partition %q: want iid or dirichlet:ALPHA", s)
}

// Federation is a coordinator with its clients' keys, kept across phases:
// each phase is a session of rounds on the same store, so the global
// adapter carries over from one task to the next.
type Federation struct {
	opts      Options
	log       *slog.Logger
	st        *store.Store
	identity  age.Identity
	recipient age.Recipient
	signer    *secure.Signer
	keys      []ed25519.PrivateKey
	names     []string
	initial   *adapter.Set
	sem       chan struct{} // worker slots: fed.ClientConfig.Slots of every client
	published int
	// grpc transport: the coordinator's material and the clients' bundles.
	material *secure.Coordinator
	bundles  []*secure.Bundle
	// The audit's canaries: their directions, names and keys.
	canaries    *audit.Canaries
	initialFlat []float64 // the initial adapter, flattened: the audit's origin
	canaryNames []string
	canaryKeys  []ed25519.PrivateKey
	// penalty regularizes every client's local training (SetPenalty).
	penalty train.Penalty
	// refit collects the clients' rank-change errors by the round they
	// trained in (ClientRanks), keyed by the round's training seed
	// (fed.RoundSeed; a trainer is not told the round number). Not drained
	// as they come: clients may start round r+1 (and take its global down)
	// before round r is reported, and their errors belong to r+1.
	refitMu sync.Mutex
	refit   map[uint64][]float64
}

// addRefit records a client's rank-change error in the round whose
// training seed is roundSeed.
func (f *Federation) addRefit(roundSeed uint64, e float64) {
	f.refitMu.Lock()
	defer f.refitMu.Unlock()
	if f.refit == nil {
		f.refit = map[uint64][]float64{}
	}
	f.refit[roundSeed] = append(f.refit[roundSeed], e)
}

// drainRefit returns the mean and largest rank-change error the clients
// reported in round, and forgets them (0, 0 without ClientRanks).
func (f *Federation) drainRefit(round uint64) (mean, worst float64) {
	f.refitMu.Lock()
	defer f.refitMu.Unlock()
	key := fed.RoundSeed(f.opts.Train.Seed, round)
	errs := f.refit[key]
	for _, e := range errs {
		mean += e
		worst = max(worst, e)
	}
	if len(errs) > 0 {
		mean /= float64(len(errs))
	}
	delete(f.refit, key)
	return mean, worst
}

// SetPenalty makes every client add p to its local loss from the next
// phase on (nil: none): the regularizing mitigations of forgetting.
func (f *Federation) SetPenalty(p train.Penalty) { f.penalty = p }

// New creates the federation's keys (in memory), its store and its initial
// global adapter.
func New(opts Options) (*Federation, error) {
	switch {
	case opts.Model == nil:
		return nil, errors.New("simulate: no model")
	case opts.Clients < 1:
		return nil, fmt.Errorf("simulate: %d clients", opts.Clients)
	case opts.CohortSize > opts.Clients:
		return nil, fmt.Errorf("simulate: cohort of %d from %d clients", opts.CohortSize, opts.Clients)
	case opts.Dir == "":
		return nil, errors.New("simulate: no run folder")
	}
	if _, _, err := ParsePartition(opts.Partition); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	if len(opts.ClientDA2s) > 0 {
		switch {
		case opts.Adapter.Kind != adapter.KindKron:
			return nil, fmt.Errorf("simulate: client dA2s apply to kron adapters, not %s", opts.Adapter.Kind)
		case !opts.Rule.Whole():
			return nil, fmt.Errorf("simulate: clients of different dA2 upload whole adapters: the rule must be hetero-exact, not %s", opts.Rule.Name)
		case slices.Min(opts.ClientDA2s) < 1:
			return nil, fmt.Errorf("simulate: client dA2s %v: every dA2 must be ≥ 1", opts.ClientDA2s)
		case opts.Canaries > 0:
			return nil, errors.New("simulate: client dA2s with canaries: the audit's canaries assume one shape for every client")
		}
	}
	if len(opts.ClientRanks) > 0 {
		top := slices.Max(opts.ClientRanks)
		switch {
		case slices.Min(opts.ClientRanks) < 1:
			return nil, fmt.Errorf("simulate: client ranks %v: every rank must be ≥ 1", opts.ClientRanks)
		case top != opts.Adapter.Rank:
			return nil, fmt.Errorf("simulate: client ranks %v: the global adapter's rank (%d) must be the largest of them (%d)", opts.ClientRanks, opts.Adapter.Rank, top)
		case opts.Canaries > 0:
			return nil, errors.New("simulate: client ranks with canaries: the audit's canaries assume one shape for every client")
		}
	}
	switch {
	case opts.Canaries < 0:
		return nil, fmt.Errorf("simulate: %d canaries", opts.Canaries)
	case opts.Canaries == 0:
	case opts.Canaries < 2:
		return nil, errors.New("simulate: the audit needs at least 2 canaries to fit their distribution")
	case opts.SecAgg != nil:
		return nil, errors.New("simulate: canaries with secure aggregation: the audit tests the released model against each canary's own update, which secure aggregation hides from nobody and the method does not cover (Andrew et al. audit central DP-FedAvg)")
	case opts.DP != nil && opts.DP.Local:
		return nil, errors.New("simulate: canaries with local DP: the one-shot audit estimates central DP-FedAvg's ε; with local DP each canary would noise itself")
	case opts.Transport == "grpc":
		return nil, errors.New("simulate: canaries run over the memory transport only")
	}
	if opts.Engine == nil {
		opts.Engine = train.CPU
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
		if opts.Engine.GPU() != nil {
			opts.Workers = 1
		}
	}
	if opts.MaxLen <= 0 {
		opts.MaxLen = 128
	}
	if opts.ValItems <= 0 {
		opts.ValItems = 16
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	f := &Federation{opts: opts, log: opts.Logger, sem: make(chan struct{}, opts.Workers)}
	var err error
	if f.initial, err = train.NewAdapterSet(opts.Model, opts.Adapter, opts.Seed); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	if len(opts.ClientRanks) > 0 {
		if err := CheckRanksFit(f.initial, slices.Max(opts.ClientRanks)); err != nil {
			return nil, err
		}
	}
	id, rc, err := secure.GenerateIdentity(secure.AgeHybrid)
	if err != nil {
		return nil, err
	}
	if f.identity, err = secure.ParseIdentity(id); err != nil {
		return nil, err
	}
	if f.recipient, err = secure.ParseRecipient(rc); err != nil {
		return nil, err
	}
	if f.signer, err = secure.GenerateSigner(secure.SchemeEd25519); err != nil {
		return nil, err
	}
	switch opts.Transport {
	case "", "memory":
	case "grpc":
		keys := filepath.Join(opts.Dir, "keys")
		if err := secure.InitDir(keys, secure.InitOptions{Name: "simulator", Hosts: []string{"127.0.0.1"}}); err != nil {
			return nil, fmt.Errorf("simulate: %w", err)
		}
		if f.material, err = secure.LoadDir(keys); err != nil {
			return nil, fmt.Errorf("simulate: %w", err)
		}
		f.identity, f.signer = f.material.Identity, f.material.Signer
		if f.recipient, err = secure.ParseRecipient(f.material.Recipient); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("simulate: transport %q: want memory or grpc", opts.Transport)
	}
	for i := range opts.Clients {
		name := fmt.Sprintf("client-%04d", i)
		var key ed25519.PrivateKey
		if f.material != nil { // the certificate's key signs uploads
			b, err := f.material.Enroll(name, 24*time.Hour, time.Time{})
			if err != nil {
				return nil, err
			}
			k, err := b.Key()
			if err != nil {
				return nil, err
			}
			f.bundles = append(f.bundles, b)
			key = k.(ed25519.PrivateKey)
		} else if _, key, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return nil, err
		}
		f.keys = append(f.keys, key)
		f.names = append(f.names, name)
	}
	if opts.Canaries > 0 {
		// As many held-out directions as needed for a steady null fit.
		if f.canaries, err = audit.NewCanaries(f.initial.NumParams(), opts.Canaries, max(4*opts.Canaries, 200), opts.Seed); err != nil {
			return nil, fmt.Errorf("simulate: %w", err)
		}
		f.initialFlat = audit.Flatten(f.initial)
		for i := range opts.Canaries {
			_, key, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return nil, err
			}
			f.canaryNames = append(f.canaryNames, fmt.Sprintf("canary-%04d", i))
			f.canaryKeys = append(f.canaryKeys, key)
		}
	}
	if f.st, err = store.Open(filepath.Join(opts.Dir, "coordinator.db"), store.Options{NoSync: true}); err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	return f, nil
}

// CheckRanksFit refuses a rank above what some adapted layer can hold: the
// full rank of its low-rank product, min(dB2, dB1) for Kron-LoRA and
// min(d_out, d_in) for LoRA — more would add parameters and no capacity.
func CheckRanksFit(set *adapter.Set, r int) error {
	for _, m := range set.Modules {
		var full int
		var shape string
		switch l := m.Layer.(type) {
		case *adapter.Kron:
			full, shape = min(l.Shape.DB2(), l.Shape.DB1()), fmt.Sprintf("B = B1·B2 is %d×%d", l.Shape.DB2(), l.Shape.DB1())
		case *adapter.LoRA:
			full, shape = min(l.Shape.DOut, l.Shape.DIn), fmt.Sprintf("ΔW is %d×%d", l.Shape.DOut, l.Shape.DIn)
		}
		if r > full {
			return fmt.Errorf("simulate: client rank %d exceeds what layer %s can take (%s: rank at most %d)", r, m.Name, shape, full)
		}
	}
	return nil
}

// Close closes the store.
func (f *Federation) Close() error { return f.st.Close() }

// WriteGlobal writes the federation's current global adapter — the file
// exactly as the coordinator published it — to path, and returns its
// version (1: the initial adapter, nothing published yet).
func (f *Federation) WriteGlobal(path string) (uint64, error) {
	g, err := fed.ReadStoredGlobal(f.st, 0)
	if err != nil {
		return 0, fmt.Errorf("simulate: %w", err)
	}
	if err := os.WriteFile(path, g.File, 0o644); err != nil {
		return 0, fmt.Errorf("simulate: %w", err)
	}
	return g.Version, nil
}

// Initial is the federation's starting adapter (with its resolved config).
func (f *Federation) Initial() *adapter.Set { return f.initial }

// RoundInfo is what a phase reports after each published round.
type RoundInfo struct {
	Round   uint64
	Global  *adapter.Set
	Version uint64
	Result  *fedpb.RoundResult
	// Audit is the empirical ε of the adapter published so far (with
	// Options.Canaries; nil otherwise).
	Audit *audit.Estimate
	// RefitError and RefitErrorMax are the mean and largest relative ΔW
	// error of the clients' taking the global down to their ranks in this
	// round (Options.ClientRanks; 0 otherwise).
	RefitError, RefitErrorMax float64
}

// accountant names the ε accountant of these options ("" without DP).
func (o Options) accountant() string {
	if o.DP == nil {
		return ""
	}
	return o.DP.AccountantName()
}

// auditDelta is δ for the audit's estimate: the DP policy's, else 1e-5.
func (f *Federation) auditDelta() float64 {
	if f.opts.DP != nil && f.opts.DP.Delta > 0 {
		return f.opts.DP.Delta
	}
	return 1e-5
}

// Audit estimates ε from global against the canaries: the cosines of its
// change from the initial adapter with every canary direction, a Gaussian
// fit to each set, and a bootstrap interval (aggregate/audit).
func (f *Federation) Audit(global *adapter.Set) (*audit.Estimate, error) {
	if f.canaries == nil {
		return nil, nil
	}
	delta := audit.Flatten(global)
	for i, x := range f.initialFlat {
		delta[i] -= x
	}
	in, out, err := f.canaries.Cosines(delta)
	if err != nil {
		return nil, err
	}
	est, err := audit.EstimateEpsilon(in, out, f.auditDelta(), 200, 0.95, f.opts.Seed)
	if err != nil {
		return nil, err
	}
	return &est, nil
}

// Phase runs rounds federated rounds in which the clients hold shards of
// trainItems (partitioned over all clients) and validate on val. onRound
// is called after each published round, in order, from the calling
// goroutine's side (it may evaluate the global adapter).
func (f *Federation) Phase(ctx context.Context, trainItems, val []task.Item, rounds int, onRound func(RoundInfo) error) error {
	alpha, iid, _ := ParsePartition(f.opts.Partition)
	var parts [][]int
	var err error
	if iid {
		parts, err = task.PartitionIID(trainItems, f.opts.Clients, f.opts.Seed)
	} else {
		parts, err = task.PartitionDirichlet(trainItems, f.opts.Clients, alpha, f.opts.Seed)
	}
	if err != nil {
		return fmt.Errorf("simulate: partition: %w", err)
	}
	shards := make([][]task.Item, len(parts))
	for i, part := range parts {
		for _, j := range part {
			shards[i] = append(shards[i], trainItems[j])
		}
	}
	return f.PhaseOwnData(ctx, shards, val, rounds, onRound)
}

// PhaseOwnData is Phase for clients that bring their own data: client i
// trains on shards[i] (one shard per client, as a federation of data
// owners has it, no partitioning); an empty shard sits the phase out.
func (f *Federation) PhaseOwnData(ctx context.Context, shards [][]task.Item, val []task.Item, rounds int, onRound func(RoundInfo) error) error {
	if len(shards) != f.opts.Clients {
		return fmt.Errorf("simulate: %d shards for %d clients", len(shards), f.opts.Clients)
	}
	if len(val) > f.opts.ValItems {
		val = val[:f.opts.ValItems]
	}
	policy := fed.Policy{Rounds: f.published + rounds, CohortSize: f.opts.CohortSize, Fraction: f.opts.Fraction,
		MinClients: f.opts.Clients + len(f.canaryNames), RoundTimeout: 24 * time.Hour, Seed: f.opts.Seed, Train: f.opts.Train, DP: f.opts.DP,
		SecAgg: f.opts.SecAgg, Sampling: f.opts.Sampling}
	if policy.CohortSize == 0 && policy.Fraction == 0 {
		policy.Fraction = 1
	}
	srv, err := fed.NewServer(fed.ServerConfig{Name: "simulator", Policy: policy, Rule: f.opts.Rule, Store: f.st,
		Initial: f.initial, Identity: f.identity, Signer: f.signer, Logger: f.log, TickEvery: 2 * time.Millisecond})
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	if why := srv.Stopped(); why != "" { // an earlier phase spent the budget
		return &StoppedError{Published: f.published, Reason: why}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns, stop, err := f.connect(srv)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	defer stop()
	var wg sync.WaitGroup
	errs := make(chan error, f.opts.Clients+len(f.canaryNames)+1)
	globals := &fed.GlobalCache{}
	// run starts one client of the federation (cfg without the parts
	// every client shares) on its goroutine.
	run := func(cfg fed.ClientConfig) error {
		cfg.Model, cfg.Adapter, cfg.Recipient, cfg.Verifier = f.initial.BaseModel, f.initial.Config.String(), f.recipient, f.signer.Verifier()
		cfg.PollWait, cfg.Logger, cfg.Globals = time.Second, f.log, globals
		c, err := fed.NewClient(cfg)
		if err != nil {
			return fmt.Errorf("simulate: %w", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", cfg.Name, err)
				cancel()
			}
		}()
		return nil
	}
	for i, name := range f.names {
		items := shards[i]
		if len(items) == 0 {
			continue // an empty shard (more clients than items): this client sits the phase out
		}
		tr := &simTrainer{f: f, name: name, items: items, val: val}
		if n := len(f.opts.ClientRanks); n > 0 {
			tr.rank = f.opts.ClientRanks[i%n]
		}
		var trainer fed.Trainer = tr
		if n := len(f.opts.ClientDA2s); n > 0 {
			trainer = &shapedSimTrainer{simTrainer: tr, dA2: f.opts.ClientDA2s[i%n]}
		}
		if err := run(fed.ClientConfig{Name: name, Trainer: trainer, Conn: conns[i], Examples: int64(len(items)), Key: f.keys[i], Slots: f.sem}); err != nil {
			return err
		}
	}
	// The canaries: each uploads c·u_j, c the clipping norm (without DP, the
	// mean shard's weight and norm 1).
	var examples int
	for _, sh := range shards {
		examples += len(sh)
	}
	examples = int(min(int64(max(1, examples/max(1, len(shards)))), policy.ExampleBound()))
	norm := 1.0
	if f.opts.DP != nil {
		norm = f.opts.DP.Clip
	}
	for j, name := range f.canaryNames {
		tr := &canaryTrainer{canaries: f.canaries, j: j, norm: norm, examples: examples}
		conn := &fed.MemoryConn{Server: srv, Peer: fed.Peer{Name: name, PublicKey: f.canaryKeys[j].Public()}}
		if err := run(fed.ClientConfig{Name: name, Trainer: tr, Conn: conn, Examples: int64(examples), Key: f.canaryKeys[j]}); err != nil {
			return err
		}
	}
	// Report rounds as they are published; the server runs in the background.
	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(ctx) }()
	reported := uint64(f.published + 1) // the global version last reported
	report := func() error {
		_, current := srv.GlobalAdapter()
		results := map[uint64]*fedpb.RoundResult{}
		for _, r := range srv.Status().Results {
			results[r.GlobalVersion] = r
		}
		for v := reported + 1; v <= current; v++ {
			global, err := srv.StoredGlobal(v)
			if err != nil {
				return err
			}
			r := results[v]
			if r == nil {
				return fmt.Errorf("no round result for global version %d", v)
			}
			reported = v
			est, err := f.Audit(global)
			if err != nil {
				return err
			}
			if onRound != nil {
				info := RoundInfo{Round: r.Round, Global: global, Version: v, Result: r, Audit: est}
				info.RefitError, info.RefitErrorMax = f.drainRefit(r.Round)
				if err := onRound(info); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// The previous phase's last round keeps its receipts until this phase's
	// first round starts: count from there.
	st0 := srv.Status()
	lastRound, lastAccepted := st0.Round, len(st0.Accepted)
	uploads := func() {
		if f.opts.Uploads == nil {
			return
		}
		st := srv.Status()
		if len(st.Accepted) == 0 || (st.Round == lastRound && len(st.Accepted) <= lastAccepted) {
			return
		}
		lastRound, lastAccepted = st.Round, len(st.Accepted)
		f.opts.Uploads(len(st.Accepted), len(st.Cohort))
	}
	var result error
	for done := false; !done; {
		select {
		case err := <-runErr:
			done, result = true, err
		case <-srv.Changed():
		}
		uploads()
		if err := report(); err != nil && result == nil {
			result = err
			cancel()
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		result = errors.Join(result, err)
	}
	if result != nil {
		return fmt.Errorf("simulate: %w", result)
	}
	_, version := srv.GlobalAdapter()
	published := int(version) - 1 // version 1 is the initial adapter
	if why := srv.Stopped(); why != "" || published < f.published+rounds {
		f.published = published
		if why == "" {
			why = fmt.Sprintf("the coordinator stopped after %d of %d rounds", published, policy.Rounds)
		}
		return &StoppedError{Published: published, Reason: why}
	}
	f.published += rounds
	return nil
}

// StoppedError is a federation that stopped before the rounds it was asked
// for (its privacy budget reached): the rounds after Published did not run.
type StoppedError struct {
	Published int    // rounds published in all, before the stop
	Reason    string // the coordinator's reason, with the ε spent
}

func (e *StoppedError) Error() string {
	return fmt.Sprintf("the federation stopped after round %d: %s", e.Published, e.Reason)
}

// connect links every client to srv: directly, or through a gRPC server
// on a loopback port with each client's own TLS certificate.
func (f *Federation) connect(srv *fed.Server) ([]fed.Conn, func(), error) {
	conns := make([]fed.Conn, len(f.names))
	if f.material == nil {
		for i, name := range f.names {
			conns[i] = &fed.MemoryConn{Server: srv, Peer: fed.Peer{Name: name, PublicKey: f.keys[i].Public()}}
		}
		return conns, func() {}, nil
	}
	tlsConf, err := f.material.ServerTLS()
	if err != nil {
		return nil, nil, err
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	gs := fed.NewGRPCServer(srv, tlsConf)
	go gs.Serve(lis)
	stop := func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
		gs.Stop()
	}
	for i, b := range f.bundles {
		ct, err := b.ClientTLS("127.0.0.1")
		if err == nil {
			conns[i], err = fed.DialGRPC(lis.Addr().String(), ct)
		}
		if err != nil {
			stop()
			return nil, nil, err
		}
	}
	return conns, stop, nil
}

// simTrainer trains one client's rounds on its shard with a learner built
// for the round, seeded by (round seed, client): results do not depend on
// which goroutine or core ran it.
type simTrainer struct {
	f          *Federation
	name       string
	items, val []task.Item
	rank       int // the client's own rank; 0: the global's
}

// Train runs in one of the federation's worker slots (fed.ClientConfig.Slots).
func (t *simTrainer) Train(ctx context.Context, local *adapter.Set, rc *fedpb.RoundConfig) (fed.TrainStats, error) {
	h := fnv.New64a()
	h.Write([]byte(t.name))
	own := local
	global := local.Config.Rank
	if t.rank > 0 && t.rank != global {
		var errs []float64
		var err error
		if own, errs, err = aggregate.WithRank(local, t.rank, t.f.opts.RankDown); err != nil {
			return fed.TrainStats{}, err
		}
		t.f.addRefit(rc.Seed, meanOf(errs))
	}
	l, err := t.f.opts.Engine.NewLearner(t.f.opts.Model, own, t.f.opts.MaxLen, mrand.New(mrand.NewPCG(rc.Seed, h.Sum64())))
	if err != nil {
		return fed.TrainStats{}, err
	}
	defer l.Close()
	et := fedtrain.Trainer{Learner: l, TrainItems: t.items, ValItems: t.val, Penalty: t.f.penalty}
	stats, err := et.Train(ctx, own, rc)
	if err != nil || own == local {
		return stats, err
	}
	// Back up to the global's rank, exactly: the upload is a change of the
	// global's shape.
	up, _, err := aggregate.WithRank(own, global, aggregate.RankSVD)
	if err != nil {
		return fed.TrainStats{}, err
	}
	dst, src := local.Params(), up.Params()
	for i := range dst {
		copy(dst[i].Data, src[i].Data)
	}
	return stats, nil
}

// shapedSimTrainer is a client of its own Kron-LoRA shape (ClientDA2s): it
// re-fits the global to its rank and dA2, trains that, and uploads it whole
// (fed.ShapedTrainer).
type shapedSimTrainer struct {
	*simTrainer
	dA2 int
}

func (t *shapedSimTrainer) TrainOwn(ctx context.Context, global *adapter.Set, rc *fedpb.RoundConfig) (*adapter.Set, fed.TrainStats, error) {
	cfg := global.Config
	cfg.DA2 = t.dA2
	if t.rank > 0 {
		cfg.Rank = t.rank
	}
	own, err := train.NewAdapterSet(t.f.opts.Model, cfg, rc.Seed)
	if err != nil {
		return nil, fed.TrainStats{}, err
	}
	h := fnv.New64a()
	h.Write([]byte(t.name))
	l, err := t.f.opts.Engine.NewLearner(t.f.opts.Model, own, t.f.opts.MaxLen, mrand.New(mrand.NewPCG(rc.Seed, h.Sum64())))
	if err != nil {
		return nil, fed.TrainStats{}, err
	}
	defer l.Close()
	st := fedtrain.Shaped{Trainer: fedtrain.Trainer{Learner: l, TrainItems: t.items, ValItems: t.val, Penalty: t.f.penalty}, Own: own,
		OnRefit: func(rel float64) { t.f.addRefit(rc.Seed, rel) }}
	return st.TrainOwn(ctx, global, rc)
}

func meanOf(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(max(len(xs), 1))
}

// canaryTrainer is a canary client's local "training": local += norm·u_j,
// the same direction every round (the server clips it to the round's clip
// norm like any update).
type canaryTrainer struct {
	canaries *audit.Canaries
	j        int
	norm     float64
	examples int
}

func (t *canaryTrainer) Train(ctx context.Context, local *adapter.Set, rc *fedpb.RoundConfig) (fed.TrainStats, error) {
	if err := t.canaries.AddTo(local, t.j, t.norm); err != nil {
		return fed.TrainStats{}, err
	}
	return fed.TrainStats{Examples: t.examples}, nil
}

// Evaluate scores a global adapter on items with a fresh learner.
func (f *Federation) Evaluate(ctx context.Context, set *adapter.Set, items []task.Item) (train.Accuracy, error) {
	l, err := f.opts.Engine.NewLearner(f.opts.Model, set, f.opts.MaxLen, mrand.New(mrand.NewPCG(0, 0)))
	if err != nil {
		return train.Accuracy{}, err
	}
	defer l.Close()
	return train.Evaluate(ctx, l, items, 16)
}
