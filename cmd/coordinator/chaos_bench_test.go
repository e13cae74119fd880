package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/safetensors"
	"github.com/kronfed/kronfed/secure"
	"github.com/kronfed/kronfed/store"
)

// BenchmarkChaos runs a federation of real processes — a coordinator and
// four honest clients training stories260K on loopback — for a few minutes
// under a scripted mix of faults, one at a time: kill -9 of the coordinator
// (restarted on its store and address) and of clients (restarted),
// SIGSTOP/SIGCONT of either. Two enrolled clients attack from this process
// over real gRPC all along: a poisoner (a 2⁶³ FedAvg weight, NaN factors,
// an update scaled far beyond rounds.max_update_norm, an upload for an old
// round) and a flooder (64 concurrent uploads a round). At the end:
//
//   - every round was published or abandoned with a reason;
//   - every upload the coordinator logged as accepted, and every upload a
//     client was told was accepted, is in its round's published result;
//   - `coordinator verify` recomputes every published round from the
//     store's accepted uploads byte for byte, and a float64 FedAvg of the
//     same decoded uploads agrees;
//   - no attack upload was accepted;
//   - the coordinator's peak resident memory, over all its incarnations,
//     stayed under 128 MiB.
//
// It is a benchmark, not a test: it takes minutes. KRONFED_CHAOS_ROUNDS
// sets the rounds (default 150, about three minutes), KRONFED_CHAOS_SEED the
// fault script, KRONFED_CHAOS_LOGS a folder for every process's output.
//
//	go test ./cmd/coordinator -run '^$' -bench Chaos -benchtime 1x -timeout 30m -v
func BenchmarkChaos(b *testing.B) {
	rounds := envInt(b, "KRONFED_CHAOS_ROUNDS", 150)
	seed := uint64(envInt(b, "KRONFED_CHAOS_SEED", 1))
	const honest, normBound, peakBoundMiB = 4, 5.0, 128
	f := newFederation(b, honest+2, fmt.Sprintf(`[rounds]
rounds = %d
fraction = 1.0
min_clients = 3
start_clients = 6
quorum = 3
timeout = "45s"
lease = "30s"
max_update_norm = %g
rule = "fedavg"`, rounds, normBound), "keep_uploads = 100000\nkeep_globals = 100000\nmax_inflight_mb = 4")
	listen := freeAddr(b)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		c := &chaos{b: b, f: f, listen: listen, rng: mrand.New(mrand.NewPCG(seed, 7))}
		c.coord = c.startCoordinator()
		for i := range honest {
			c.clients = append(c.clients, c.join(i))
		}
		c.all = append(c.all, c.clients...)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		attackers := []*attacker{newAttacker(b, f, honest, listen, "poisoner"), newAttacker(b, f, honest+1, listen, "flooder")}
		for _, a := range attackers {
			wg.Add(1)
			go func() { defer wg.Done(); a.run(ctx) }()
		}
		wg.Add(1)
		go func() { defer wg.Done(); c.sampleMemory(ctx) }()
		c.injectFaults(30 * time.Minute)
		cancel()
		wg.Wait()
		for _, p := range c.all {
			p.kill()
		}
		wall := time.Since(start)
		b.StopTimer()
		c.saveLogs(os.Getenv("KRONFED_CHAOS_LOGS"))
		published, abandoned := c.check(rounds, normBound)
		var tried, refused, accepted int64
		reasons := map[string]int64{}
		for _, a := range attackers {
			a.mu.Lock()
			tried += a.tried
			accepted += a.accepted
			for r, n := range a.refused {
				reasons[a.kind+":"+r] += n
				refused += n
			}
			a.mu.Unlock()
		}
		if accepted > 0 || tried == 0 {
			b.Errorf("attack uploads: %d tried, %d accepted", tried, accepted)
		}
		peak := c.peakKiB.Load()
		if peak > peakBoundMiB<<10 {
			b.Errorf("coordinator peak RSS %d MiB, bound %d MiB", peak>>10, peakBoundMiB)
		}
		b.Logf("%d faults injected and survived (%s); %d attack uploads tried, %d refused, %d accepted (%v); %d rounds published, %d abandoned; coordinator peak RSS %.1f MiB over %d incarnations; %v",
			c.faults, c.faultSummary(), tried, refused, accepted, reasons, published, abandoned, float64(peak)/1024, c.incarnations, wall.Round(time.Second))
		b.ReportMetric(float64(c.faults), "faults")
		b.ReportMetric(float64(tried), "attacks")
		b.ReportMetric(float64(refused), "refused")
		b.ReportMetric(float64(published), "published")
		b.ReportMetric(float64(abandoned), "abandoned")
		b.ReportMetric(float64(peak)/1024, "MiB-peak-RSS")
		b.ReportMetric(wall.Seconds(), "s-wall")
		b.StartTimer()
	}
}

func envInt(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// chaos drives the fault script against the federation's processes.
type chaos struct {
	b      *testing.B
	f      *federation
	listen string
	rng    *mrand.Rand

	mu           sync.Mutex
	coord        *proc
	coords       []*proc // every incarnation, for the logs
	clients      []*proc // the current process of each honest client
	all          []*proc // every client process, for the logs
	incarnations int
	faults       int
	kinds        map[string]int
	peakKiB      atomic.Int64
}

func (c *chaos) startCoordinator() *proc {
	p := start(c.b, fmt.Sprintf("coordinator#%d", c.incarnations+1), c.f.coord, "serve", "--config", c.f.config, "--listen", c.listen, "--linger", "3s")
	p.waitFor(c.b, `listening on`, 30*time.Second)
	c.mu.Lock()
	c.coords = append(c.coords, p)
	c.incarnations++
	c.mu.Unlock()
	return p
}

// join starts honest client i, training on 48 items a round (a second or
// two: rounds long enough for faults to land inside them).
func (c *chaos) join(i int) *proc { return c.f.join(c.b, i, c.listen, "--train-limit", "48") }

func (c *chaos) finished() bool {
	select {
	case <-c.coord.done:
		return strings.Contains(c.coord.output(), "all rounds published")
	default:
		return false
	}
}

// injectFaults runs one fault at a time, a few seconds apart, until the
// coordinator has published every round and exited.
func (c *chaos) injectFaults(limit time.Duration) {
	c.kinds = map[string]int{}
	deadline := time.Now().Add(limit)
	pause := func(lo, hi float64) { time.Sleep(time.Duration((lo + c.rng.Float64()*(hi-lo)) * float64(time.Second))) }
	for !c.finished() {
		if time.Now().After(deadline) {
			c.b.Fatalf("the federation did not finish within %v", limit)
		}
		pause(2, 6)
		select {
		case <-c.coord.done:
			if !c.finished() {
				c.b.Fatalf("the coordinator exited on its own: %v", c.coord.err)
			}
			continue
		default:
		}
		i := c.rng.IntN(len(c.clients))
		switch k := c.rng.IntN(10); {
		case k < 3:
			c.fault("kill -9 coordinator")
			c.coord.kill()
			pause(0.2, 2)
			c.coord = c.startCoordinator()
		case k < 5:
			c.fault("SIGSTOP coordinator")
			c.coord.cmd.Process.Signal(syscall.SIGSTOP)
			pause(1, 5)
			c.coord.cmd.Process.Signal(syscall.SIGCONT)
		case k < 8:
			c.fault("kill -9 client")
			c.clients[i].kill()
			pause(0.5, 5)
			if !c.finished() {
				c.clients[i] = c.join(i)
				c.mu.Lock()
				c.all = append(c.all, c.clients[i])
				c.mu.Unlock()
			}
		default:
			c.fault("SIGSTOP client")
			c.clients[i].cmd.Process.Signal(syscall.SIGSTOP)
			pause(2, 20)
			c.clients[i].cmd.Process.Signal(syscall.SIGCONT)
		}
	}
}

// saveLogs writes every process's output into dir ("" : nowhere).
func (c *chaos) saveLogs(dir string) {
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.b.Fatal(err)
	}
	for i, p := range slices.Concat(c.coords, c.all) {
		name := fmt.Sprintf("%02d-%s.log", i, strings.NewReplacer(" ", "-", "#", "").Replace(p.name))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(p.output()), 0o644); err != nil {
			c.b.Fatal(err)
		}
	}
}

func (c *chaos) fault(kind string) {
	c.b.Logf("%s fault %d: %s", time.Now().Format("15:04:05.000"), c.faults+1, kind)
	c.faults++
	c.kinds[kind]++
}

func (c *chaos) faultSummary() string {
	var parts []string
	for _, k := range []string{"kill -9 coordinator", "SIGSTOP coordinator", "kill -9 client", "SIGSTOP client"} {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, c.kinds[k]))
	}
	return strings.Join(parts, ", ")
}

var vmHWMLine = regexp.MustCompile(`VmHWM:\s+(\d+) kB`)

// sampleMemory keeps the largest peak RSS (VmHWM) of any coordinator
// incarnation, read every 100 ms while it lives.
func (c *chaos) sampleMemory(ctx context.Context) {
	for ctx.Err() == nil {
		c.mu.Lock()
		p := c.coords[len(c.coords)-1]
		c.mu.Unlock()
		if raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)); err == nil {
			if m := vmHWMLine.FindSubmatch(raw); m != nil {
				kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
				for old := c.peakKiB.Load(); kb > old && !c.peakKiB.CompareAndSwap(old, kb); old = c.peakKiB.Load() {
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// check verifies the store after the run and returns how many rounds were
// published and abandoned.
func (c *chaos) check(rounds int, normBound float64) (published, abandoned int) {
	b := c.b
	// The coordinator's own recomputation first (it opens the store itself).
	verified := runCmd(b, c.f.coord, "verify", "--config", c.f.config)
	st, err := store.Open(filepath.Join(c.f.dir, "coord", "state.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	results := map[uint64]*fedpb.RoundResult{}
	var last uint64
	err = st.Rounds(0, func(round uint64, rec []byte) error {
		r := &fedpb.RoundResult{}
		results[round], last = r, round
		return proto.Unmarshal(rec, r)
	})
	if err != nil {
		b.Fatal(err)
	}
	for r := uint64(1); r <= last; r++ {
		res := results[r]
		switch {
		case res == nil:
			b.Errorf("round %d has no result", r)
		case res.Outcome == "published":
			published++
		case strings.HasPrefix(res.Outcome, "abandoned: ") && len(res.Outcome) > len("abandoned: "):
			abandoned++
			b.Logf("round %d: %s", r, res.Outcome)
		default:
			b.Errorf("round %d: outcome %q", r, res.Outcome)
		}
	}
	if published != rounds {
		b.Errorf("%d rounds published, want %d", published, rounds)
	}

	// Every upload the coordinator logged as accepted, or a client was
	// told was accepted, is in its round's published result (or the round
	// was abandoned, which discards its uploads openly).
	checkIn := func(who, client string, round uint64) {
		res := results[round]
		if res == nil {
			b.Errorf("%s: %s's round-%d upload was accepted, but the round has no result", who, client, round)
		} else if res.Outcome == "published" && !slices.Contains(res.Clients, client) {
			b.Errorf("%s: %s's round-%d upload was accepted, but the published round aggregated %v", who, client, round, res.Clients)
		}
	}
	accepted := 0
	for _, p := range c.coords {
		for _, m := range regexp.MustCompile(`upload accepted" client=(c\d+) round=(\d+)`).FindAllStringSubmatch(p.output(), -1) {
			r, _ := strconv.ParseUint(m[2], 10, 64)
			checkIn(p.name, m[1], r)
			accepted++
		}
	}
	for _, p := range c.all {
		client := strings.TrimPrefix(p.name, "client ")
		for _, m := range regexp.MustCompile(`(?m)^round (\d+): loss .* uploaded`).FindAllStringSubmatch(p.output(), -1) {
			r, _ := strconv.ParseUint(m[1], 10, 64)
			checkIn(p.name, client, r)
		}
	}
	b.Logf("%d uploads logged accepted by the coordinator's incarnations, all in their published rounds", accepted)

	// The published globals are the replay of the accepted uploads: the
	// coordinator's own recomputation, byte for byte, ...
	if want := fmt.Sprintf("%d equal to their replay, %d not replayable", published, abandoned); !strings.Contains(verified, want) {
		b.Errorf("coordinator verify: want %q in\n%s", want, verified)
	}
	// ... and FedAvg in float64, here, over the same decoded uploads.
	cfg, err := loadServeConfig(c.f.config)
	if err != nil {
		b.Fatal(err)
	}
	policy, rule, err := cfg.policy()
	if err != nil {
		b.Fatal(err)
	}
	material, err := secure.LoadDir(cfg.Dir)
	if err != nil {
		b.Fatal(err)
	}
	var worstNorm float64
	for r := uint64(1); r <= last; r++ {
		if results[r] == nil || results[r].Outcome != "published" {
			continue
		}
		rp, err := fed.ReplayRound(st, material.Identity, policy, rule, r)
		if err != nil {
			b.Fatal(err)
		}
		if rel := fedAvgFloat64Gap(rp); rel > 1e-6 {
			b.Errorf("round %d: the published global is %.3g (relative) from a float64 FedAvg of its accepted uploads", r, rel)
		}
		for _, u := range rp.Uploads {
			worstNorm = max(worstNorm, u.Delta.Norm())
		}
	}
	if worstNorm > normBound {
		b.Errorf("an accepted update has norm %.3g above the bound %g", worstNorm, normBound)
	}
	b.Logf("largest accepted update norm %.3g (bound %g)", worstNorm, normBound)
	return published, abandoned
}

// fedAvgFloat64Gap is the largest difference, relative to the coordinate's
// magnitude, between a replayed round's published global and
// Σ p_i·(base + Δ_i) computed in float64.
func fedAvgFloat64Gap(rp *fed.Replay) float64 {
	var total float64
	for _, u := range rp.Uploads {
		total += float64(u.Examples)
	}
	base, got := rp.Base.Set.Params(), rp.Published.Set.Params()
	deltas := make([][]adapter.Factor, len(rp.Uploads))
	for i, u := range rp.Uploads {
		deltas[i] = u.Delta.Params()
	}
	var worst float64
	for j := range base {
		for k, x := range base[j].Data {
			var want, scale float64
			for i, u := range rp.Uploads {
				v := float64(u.Examples) / total * (float64(x) + float64(deltas[i][j].Data[k]))
				want += v
				scale += math.Abs(v)
			}
			worst = max(worst, math.Abs(float64(got[j].Data[k])-want)/max(scale, 1e-30))
		}
	}
	return worst
}

// attacker is an enrolled client that never trains: each round it is
// selected for, it sends uploads the coordinator must refuse.
type attacker struct {
	b         *testing.B
	kind      string // poisoner or flooder
	bundle    *secure.Bundle
	conn      *fed.GRPCConn
	key       crypto.Signer
	recipient age.Recipient
	rng       *mrand.Rand

	mu       sync.Mutex
	tried    int64
	accepted int64
	refused  map[string]int64
}

func newAttacker(b *testing.B, f *federation, i int, addr, kind string) *attacker {
	bundle, conn := f.dial(b, i, addr)
	var err error
	a := &attacker{b: b, kind: kind, bundle: bundle, conn: conn, refused: map[string]int64{}, rng: mrand.New(mrand.NewPCG(uint64(i), 99))}
	if a.key, err = bundle.Key(); err != nil {
		b.Fatal(err)
	}
	if a.recipient, err = bundle.CoordinatorRecipient(); err != nil {
		b.Fatal(err)
	}
	return a
}

// run joins (again after every coordinator restart) and attacks each round
// it is selected for, until ctx ends.
func (a *attacker) run(ctx context.Context) {
	var after uint64
	joined := false
	for ctx.Err() == nil {
		if !joined {
			st, err := a.conn.Status(ctx)
			if err == nil {
				_, err = a.conn.Join(ctx, &fedpb.JoinRequest{Model: st.Model, Adapter: st.Adapter, Examples: 16})
			}
			if err != nil {
				sleepCtx(ctx, 300*time.Millisecond)
				continue
			}
			joined = true
		}
		asg, err := a.conn.NextRound(ctx, after, 5*time.Second)
		if err != nil {
			joined = status.Code(err) != codes.NotFound
			sleepCtx(ctx, 300*time.Millisecond)
			continue
		}
		if asg.Round == 0 {
			continue
		}
		after = asg.Round
		if a.kind == "flooder" {
			a.flood(ctx, asg)
		} else {
			a.poison(ctx, asg)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// poison sends, for one round: a properly trained-looking update claiming
// 2⁶³−1 examples, one for the previous round, one in another client's
// name, one with a NaN factor, and one scaled 100× past the norm bound.
func (a *attacker) poison(ctx context.Context, asg *fedpb.RoundAssignment) {
	file, _, err := a.conn.Download(ctx, asg.GlobalVersion)
	if err != nil {
		return // the coordinator went away; the next round will do
	}
	global, _, err := fed.DecodeAdapter(file)
	if err != nil {
		a.b.Errorf("poisoner: the published global does not decode: %v", err)
		return
	}
	small := global.Clone()
	for _, p := range small.Params() {
		for i := range p.Data {
			p.Data[i] = float32(a.rng.NormFloat64() * 1e-3)
		}
	}
	send := func(delta *adapter.Set, edit func(h *fedpb.UploadHeader), patch func([]byte)) {
		payload, err := fed.EncodeUpdate(global, delta, asg.Round, a.bundle.Name, asg.GlobalVersion, int(asg.Config.GetBits()), a.rng)
		if err != nil {
			a.b.Errorf("poisoner: encode: %v", err)
			return
		}
		if patch != nil {
			patch(payload)
		}
		ct, err := secure.Encrypt(a.recipient, payload)
		if err != nil {
			a.b.Fatal(err)
		}
		h := a.header(asg, ct)
		edit(h)
		h.Signature, _ = secure.SignWithKey(a.key, fed.UploadSigningBytes(h))
		a.send(ctx, h, ct)
	}
	keep := func(*fedpb.UploadHeader) {}
	send(small, func(h *fedpb.UploadHeader) { h.Examples = math.MaxInt64 }, nil)
	send(small, func(h *fedpb.UploadHeader) { h.Round-- }, nil)
	send(small, func(h *fedpb.UploadHeader) { h.Client = "c0" }, nil)
	// The encoder refuses NaN, so a NaN goes into the encoded update: the
	// first quantized factor's first scale (offset 13 of its encoding, see
	// quant.Matrix.MarshalBinary) becomes one.
	send(small, keep, func(payload []byte) {
		f, err := safetensors.Parse(payload)
		if err != nil {
			a.b.Fatal(err)
		}
		data := 8 + int64(binary.LittleEndian.Uint64(payload))
		for _, t := range f.Tensors() {
			if t.DType == safetensors.U8 {
				binary.LittleEndian.PutUint32(payload[data+t.Begin+13:], math.Float32bits(float32(math.NaN())))
				return
			}
		}
		a.b.Fatal("the encoded update has no quantized factor")
	})
	send(small.Clone().Scale(100*5.0/small.Norm()), keep, nil)
}

// flood sends 64 uploads at once, each a properly signed header over 512
// KiB of random bytes.
func (a *attacker) flood(ctx context.Context, asg *fedpb.RoundAssignment) {
	body := make([]byte, 512<<10)
	rand.Read(body)
	h := a.header(asg, body)
	h.Signature, _ = secure.SignWithKey(a.key, fed.UploadSigningBytes(h))
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() { defer wg.Done(); a.send(ctx, h, body) }()
	}
	wg.Wait()
}

func (a *attacker) header(asg *fedpb.RoundAssignment, ct []byte) *fedpb.UploadHeader {
	nonce := make([]byte, fed.NonceSize)
	rand.Read(nonce)
	return &fedpb.UploadHeader{Round: asg.Round, Client: a.bundle.Name, BaseVersion: asg.GlobalVersion, Examples: 16,
		Size: uint64(len(ct)), Digest: fed.Digest(ct), Nonce: nonce, TrainLoss: 1, ValAccuracy: 0.5}
}

// send uploads and counts the outcome: refused by reason, or accepted (a
// failure). Calls that never reached a coordinator (it was down) do not
// count.
func (a *attacker) send(ctx context.Context, h *fedpb.UploadHeader, ct []byte) {
	_, err := a.conn.Upload(ctx, h, ct)
	st, _ := status.FromError(err)
	reason := ""
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == fed.RefusalDomain {
			reason = info.Reason
		}
	}
	if err != nil && reason == "" {
		switch st.Code() {
		case codes.Unavailable, codes.Canceled:
			return
		}
		reason = st.Code().String()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tried++
	if err == nil {
		a.accepted++
		a.b.Errorf("%s: an attack upload (round %d, %d examples) was accepted", a.kind, h.Round, h.Examples)
		return
	}
	a.refused[reason]++
}
