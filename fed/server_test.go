package fed

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/secure"
	"github.com/kronfed/kronfed/store"
)

// shiftTrainer is a deterministic local "training" for protocol tests: it
// adds Shift to every tensor, so the expected aggregate is known exactly
// (up to quantization).
type shiftTrainer struct {
	Shift    float32
	Examples int
	// Block, when set, is waited on before training returns.
	Block chan struct{}
}

func (s *shiftTrainer) Train(ctx context.Context, local *adapter.Set, rc *fedpb.RoundConfig) (TrainStats, error) {
	if s.Block != nil {
		select {
		case <-s.Block:
		case <-ctx.Done():
			return TrainStats{}, ctx.Err()
		}
	}
	for _, p := range local.Params() {
		for i := range p.Data {
			p.Data[i] += s.Shift
		}
	}
	return TrainStats{Examples: s.Examples, Loss: math.Abs(float64(s.Shift)), Accuracy: 0.5}, nil
}

// testSet is a small Kron-LoRA adapter with a dense head large enough
// (> ChunkSize as float32) that uploads and downloads span several chunks.
func testSet(t testing.TB, dense int) *adapter.Set {
	t.Helper()
	cfg := adapter.Config{Kind: adapter.KindKron, Rank: 4, DA2: 4, Alpha: 8}
	rng := mrand.New(mrand.NewPCG(1, 2))
	set, err := adapter.NewSet(cfg, "test-base", []adapter.Target{{Name: "l0.q", DOut: 32, DIn: 64}, {Name: "l0.o", DOut: 64, DIn: 32}}, rng)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range set.Params() { // non-zero A so the Kronecker products matter
		for i := range p.Data {
			p.Data[i] = float32(rng.NormFloat64() * 0.1)
		}
	}
	if dense > 0 {
		set.Dense = []adapter.Dense{{Name: "head.weight", Rows: 1, Cols: dense, Data: make([]float32, dense), Grad: make([]float32, dense)}}
	}
	return set
}

// testLogger logs to stderr when FED_TEST_LOG is set (debugging), else
// nowhere.
func testLogger() *slog.Logger {
	if os.Getenv("FED_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

type testFed struct {
	srv      *Server
	st       *store.Store
	identity age.Identity
	recip    age.Recipient
	signer   *secure.Signer
	ca       *secure.Authority
	initial  *adapter.Set
	dir      string
	policy   Policy
	rule     Rule   // zero: fedavg
	digest   string // the base model files' digest the coordinator checks ("" : none)
}

func newTestFed(t *testing.T, p Policy, dense int) *testFed {
	t.Helper()
	id, rc, err := secure.GenerateIdentity("x25519")
	if err != nil {
		t.Fatal(err)
	}
	f := &testFed{dir: t.TempDir(), initial: testSet(t, dense), policy: p}
	if f.identity, err = secure.ParseIdentity(id); err != nil {
		t.Fatal(err)
	}
	if f.recip, err = secure.ParseRecipient(rc); err != nil {
		t.Fatal(err)
	}
	if f.signer, err = secure.GenerateSigner("Ed25519"); err != nil {
		t.Fatal(err)
	}
	if f.ca, err = secure.NewAuthority("test-ca", time.Now(), 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	f.open(t)
	return f
}

// open (re)starts the coordinator on the federation's store.
func (f *testFed) open(t *testing.T) {
	t.Helper()
	if err := f.tryOpen(); err != nil {
		t.Fatal(err)
	}
}

// tryOpen opens the store and a coordinator on it.
func (f *testFed) tryOpen() error {
	st, err := store.Open(filepath.Join(f.dir, "state.db"), store.Options{NoSync: true})
	if err != nil {
		return err
	}
	rule := f.rule
	if rule.Name == "" {
		rule = Rule{Name: "fedavg"}
	}
	srv, err := NewServer(ServerConfig{Policy: f.policy, Rule: rule, Store: st, Initial: f.initial, ModelDigest: f.digest,
		Identity: f.identity, Signer: f.signer, TickEvery: 5 * time.Millisecond, KeepUploads: 1, Logger: testLogger()})
	if err != nil {
		st.Close()
		return err
	}
	f.srv, f.st = srv, st
	return nil
}

type testClient struct {
	name string
	key  ed25519.PrivateKey
	conn *MemoryConn
	tr   *shiftTrainer
	c    *Client
}

func (f *testFed) client(t *testing.T, name string, shift float32, examples, rounds int) *testClient {
	t.Helper()
	// A certificate from the federation's CA, as enrolment issues one: the
	// store keeps it with every accepted upload (ReplayRound checks the
	// upload's signature against it).
	certPEM, keyPEM, err := f.ca.Issue(name, secure.RoleClient, nil, time.Now(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := secure.ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := secure.ParsePrivateKey(keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	key := signer.(ed25519.PrivateKey)
	tc := &testClient{name: name, key: key, conn: &MemoryConn{Server: f.srv, Peer: Peer{Name: name, PublicKey: key.Public(), CertDER: cert.Raw}},
		tr: &shiftTrainer{Shift: shift, Examples: examples}}
	c, err := NewClient(ClientConfig{Name: name, Conn: tc.conn, Trainer: tc.tr, Model: f.initial.BaseModel,
		Adapter: f.initial.Config.String(), Examples: int64(examples), Key: key, Recipient: f.recip,
		Verifier: f.signer.Verifier(), Rounds: rounds, PollWait: 50 * time.Millisecond, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	tc.c = c
	return tc
}

func runAll(t *testing.T, ctx context.Context, srv *Server, clients ...*testClient) (serverErr error, clientErrs []error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	clientErrs = make([]error, len(clients))
	for i, c := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); clientErrs[i] = c.c.Run(ctx) }()
	}
	serverErr = srv.Run(ctx)
	wg.Wait()
	return serverErr, clientErrs
}

// TestFederatedRoundsInMemory runs a coordinator and three clients for two
// rounds and checks the published adapter against the weighted mean of the
// clients' known updates, within 8-bit quantization error.
func TestFederatedRoundsInMemory(t *testing.T) {
	p := testPolicy()
	f := newTestFed(t, p, 300_000)
	defer f.st.Close()
	shifts := []float32{0.01, -0.02, 0.04}
	examples := []int{10, 30, 60}
	var clients []*testClient
	for i := range shifts {
		clients = append(clients, f.client(t, fmt.Sprintf("c%d", i), shifts[i], examples[i], p.Rounds))
	}
	serr, cerrs := runAll(t, context.Background(), f.srv, clients...)
	if serr != nil {
		t.Fatalf("server: %v", serr)
	}
	for i, err := range cerrs {
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
	// Each round moves every tensor by Σ w_i·shift_i / Σ w_i.
	mean := 0.0
	for i := range shifts {
		mean += float64(shifts[i]) * float64(examples[i]) / 100
	}
	got, version := f.srv.GlobalAdapter()
	if version != 3 {
		t.Fatalf("global version %d after 2 rounds, want 3", version)
	}
	init := f.initial.Params()
	worst := 0.0
	for k, g := range got.Params() {
		for i := range g.Data {
			worst = math.Max(worst, math.Abs(float64(g.Data[i])-float64(init[k].Data[i])-2*mean))
		}
	}
	// 8-bit symmetric per-row steps of max|Δ|/127 ≤ 0.04/127 per client and round.
	if tol := 2 * 0.04 / 127.0; worst > tol {
		t.Fatalf("published adapter is off the weighted mean of the updates by %.3g (tolerance %.3g)", worst, tol)
	}
	// Retention: round 1's uploads were deleted when round 2 was published.
	if c, _ := f.st.UploadClients(1); len(c) != 0 {
		t.Fatalf("round 1 uploads kept: %v", c)
	}
	if c, _ := f.st.UploadClients(2); len(c) != 3 {
		t.Fatalf("round 2 uploads: %v", c)
	}
	stt := f.srv.Status()
	if len(stt.Results) != 2 || stt.Results[1].Outcome != "published" || stt.Results[1].Examples != 100 {
		t.Fatalf("results: %v", stt.Results)
	}
	r := stt.Results[0]
	// The 300k-float dense head travels as float32, so wire ≈ raw here; the
	// bound below catches a payload that grew beyond it (headers aside).
	if r.WireBytes == 0 || r.WireBytes >= r.RawBytes+uint64(3*1024) {
		t.Fatalf("round 1 wire bytes %d, raw %d", r.WireBytes, r.RawBytes)
	}
}

// TestFedAdamSurvivesRestart: FedAdam's moments are stored with every
// global version, so two rounds with a coordinator restart between them
// publish bit for bit the adapter of two uninterrupted rounds (float32
// uploads, deterministic clients). A restart under another rule drops the
// stored moments and runs.
func TestFedAdamSurvivesRestart(t *testing.T) {
	p := testPolicy()
	p.Train.Bits = 32
	shifts, examples := []float32{0.01, -0.02, 0.04}, []int{10, 30, 60}
	rounds := func(f *testFed, n int) {
		t.Helper()
		var clients []*testClient
		for i := range shifts {
			clients = append(clients, f.client(t, fmt.Sprintf("c%d", i), shifts[i], examples[i], n))
		}
		if serr, cerrs := runAll(t, context.Background(), f.srv, clients...); serr != nil || errors.Join(cerrs...) != nil {
			t.Fatalf("rounds: %v %v", serr, cerrs)
		}
	}
	// A federation under FedAdam that publishes n rounds in all.
	fedAdam := func(n int) *testFed {
		p.Rounds = n
		f := newTestFed(t, p, 0)
		f.rule = Rule{Name: "fedadam", LR: 0.05, Tau: 1e-3}
		f.st.Close()
		f.open(t)
		return f
	}
	whole := fedAdam(2)
	rounds(whole, 2)
	want, _ := whole.srv.GlobalAdapter()
	whole.st.Close()
	// Restarted after its last round, the coordinator says it has finished
	// rather than serving forever.
	whole.open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := whole.srv.Run(ctx); err != nil {
		t.Fatalf("restarted finished federation: %v", err)
	}
	cancel()
	whole.st.Close()

	f := fedAdam(1)
	rounds(f, 1)
	f.st.Close()
	f.policy.Rounds = 2
	f.open(t)
	rounds(f, 1)
	got, version := f.srv.GlobalAdapter()
	if version != 3 {
		t.Fatalf("version %d", version)
	}
	for i, g := range got.Params() {
		for k := range g.Data {
			if math.Float32bits(g.Data[k]) != math.Float32bits(want.Params()[i].Data[k]) {
				t.Fatalf("%s[%d]: %v after a restart, %v uninterrupted", g.Name, k, g.Data[k], want.Params()[i].Data[k])
			}
		}
	}
	f.st.Close()
	f.rule = Rule{}
	f.policy.Rounds = 3
	f.open(t)
	defer f.st.Close()
	rounds(f, 1)
}

func TestUploadRefusals(t *testing.T) {
	p := testPolicy()
	p.Rounds, p.CohortSize, p.Quorum = 1, 2, 2
	f := newTestFed(t, p, 0)
	defer f.st.Close()
	a := f.client(t, "a", 0.01, 5, 1)
	b := f.client(t, "b", 0.02, 5, 1)
	ctx := context.Background()
	for _, c := range []*testClient{a, b} {
		if _, err := c.conn.Join(ctx, &fedpb.JoinRequest{Model: "test-base", Adapter: f.initial.Config.String(), Examples: 5}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.conn.Join(ctx, &fedpb.JoinRequest{Model: "other", Adapter: f.initial.Config.String(), Examples: 5}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("join with another base model: %v", err)
	}
	f.srv.mu.Lock()
	f.srv.step(func() []Effect { return f.srv.m.Tick(time.Now()) })
	f.srv.mu.Unlock()
	asg, err := a.conn.NextRound(ctx, 0, time.Second)
	if err != nil || asg.Round != 1 {
		t.Fatalf("assignment %v, %v", asg, err)
	}
	if err := f.signer.Verifier().Verify(AssignmentSigningBytes(asg), asg.Signature); err != nil {
		t.Fatalf("assignment signature: %v", err)
	}
	// Prepare a's real upload.
	a.c.global, a.c.version = f.initial.Clone(), 1
	if ev := a.c.train(ctx, asg); !isTrained(ev) {
		t.Fatalf("train: %#v", ev)
	}
	good := a.c.prepared
	clone := func() *fedpb.UploadHeader { return proto.Clone(good.header).(*fedpb.UploadHeader) }
	ct := func() []byte { return append([]byte(nil), good.ct...) }

	check := func(name string, conn *MemoryConn, h *fedpb.UploadHeader, body []byte, code codes.Code) {
		t.Helper()
		_, err := conn.Upload(ctx, h, body)
		if status.Code(err) != code {
			t.Errorf("%s: %v, want %v", name, err, code)
		}
	}
	// An enrolled client lying about its examples (its FedAvg weight) or its
	// loss and accuracy, with a properly signed header: refused before the
	// body is opened.
	for name, lie := range map[string]func(*fedpb.UploadHeader){
		"2^63-1 examples":   func(h *fedpb.UploadHeader) { h.Examples = math.MaxInt64 },
		"examples over max": func(h *fedpb.UploadHeader) { h.Examples = p.ExampleBound() + 1 },
		"NaN loss":          func(h *fedpb.UploadHeader) { h.TrainLoss = math.NaN() },
		"negative loss":     func(h *fedpb.UploadHeader) { h.TrainLoss = -1 },
		"accuracy 1.5":      func(h *fedpb.UploadHeader) { h.ValAccuracy = 1.5 },
	} {
		h := clone()
		lie(h)
		h.Signature, _ = secure.SignWithKey(a.key, UploadSigningBytes(h))
		check(name, a.conn, h, ct(), codes.InvalidArgument)
	}
	if _, err := b.conn.Join(ctx, &fedpb.JoinRequest{Model: "test-base", Adapter: f.initial.Config.String(), Examples: math.MaxInt64}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("join claiming 2^63-1 examples: %v", err)
	}
	tampered := ct()
	tampered[len(tampered)/2] ^= 1
	check("tampered payload", a.conn, clone(), tampered, codes.InvalidArgument)
	h := clone()
	h.Examples = 1000 // the signed header altered
	check("altered header", a.conn, h, ct(), codes.Unauthenticated)
	check("truncated", a.conn, clone(), ct()[:10], codes.InvalidArgument)
	check("someone else's upload", b.conn, clone(), ct(), codes.PermissionDenied)
	// b signs a header naming itself but with a's ciphertext: the payload is
	// bound to a inside the encryption, so it is refused after decryption.
	hb := clone()
	hb.Client = "b"
	hb.Signature, _ = secure.SignWithKey(b.key, UploadSigningBytes(hb))
	check("payload of another client", b.conn, hb, ct(), codes.InvalidArgument)
	// Garbage encrypted properly is refused as a bad payload.
	junk, _ := secure.Encrypt(f.recip, []byte("not an adapter"))
	hj := clone()
	hj.Client, hj.Size, hj.Digest = "b", uint64(len(junk)), Digest(junk)
	hj.Signature, _ = secure.SignWithKey(b.key, UploadSigningBytes(hj))
	check("junk payload", b.conn, hj, junk, codes.InvalidArgument)

	// Admission by header: one upload in flight per client, and all of them
	// together within MaxInFlightBytes, before any body is read.
	f.srv.cfg.MaxInFlightBytes = int64(good.header.Size+hj.Size) - 1
	releaseA, err := f.srv.AdmitUpload(a.conn.Peer, good.header)
	if err != nil {
		t.Fatalf("admitting a's upload: %v", err)
	}
	if _, err := f.srv.AdmitUpload(a.conn.Peer, good.header); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a's second upload in flight: %v, want ResourceExhausted", err)
	}
	if _, err := f.srv.AdmitUpload(b.conn.Peer, hj); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("b's upload beyond the in-flight bound: %v, want ResourceExhausted", err)
	}
	releaseA()
	releaseA() // a second release must not free the bytes twice
	releaseB, err := f.srv.AdmitUpload(b.conn.Peer, hj)
	if err != nil {
		t.Fatalf("admitting b's upload once a's finished: %v", err)
	}
	releaseB()
	if now, peak := f.srv.InFlight(); now != 0 || peak != int64(good.header.Size) {
		t.Errorf("in flight %d bytes, peak %d; want 0 and %d", now, peak, good.header.Size)
	}
	f.srv.cfg.MaxInFlightBytes = 1 << 30

	// An update scaled up beyond the norm bound (model replacement) is
	// refused once decoded; a's shifts every parameter by 0.01, so its norm
	// is 0.01·√n up to quantization.
	n := math.Sqrt(float64(f.initial.NumParams()))
	f.srv.cfg.Policy.MaxUpdateNorm = 0.005 * n
	if _, err := a.conn.Upload(ctx, good.header, good.ct); status.Code(err) != codes.InvalidArgument || refusalReason(err) != ReasonUpdateNorm {
		t.Errorf("update above the norm bound: %v, want InvalidArgument with reason %s", err, ReasonUpdateNorm)
	}
	f.srv.cfg.Policy.MaxUpdateNorm = 0.02 * n // a's update is under this one

	if _, err := a.conn.Upload(ctx, good.header, good.ct); err != nil {
		t.Fatalf("good upload: %v", err)
	}
	// A retry of the same upload (lost receipt) is answered idempotently; a
	// second, different upload is a duplicate.
	if _, err := a.conn.Upload(ctx, good.header, good.ct); err != nil {
		t.Fatalf("retried upload: %v", err)
	}
	h2 := clone()
	h2.Nonce = make([]byte, NonceSize)
	h2.Signature, _ = secure.SignWithKey(a.key, UploadSigningBytes(h2))
	check("second upload", a.conn, h2, ct(), codes.AlreadyExists)
	if n := len(f.srv.Status().Accepted); n != 1 {
		t.Fatalf("%d uploads accepted", n)
	}

	// A bit flipped on disk inside the accepted upload's ciphertext: the
	// restarted coordinator refuses to start, naming the upload.
	f.st.Close()
	dbPath := filepath.Join(f.dir, "state.db")
	intact, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(intact, good.ct[len(good.ct)/2:len(good.ct)/2+32])
	if at < 0 {
		t.Fatal("the accepted ciphertext is not in the state file")
	}
	damaged := bytes.Clone(intact)
	damaged[at] ^= 0x10
	os.WriteFile(dbPath, damaged, 0o600)
	if err := f.tryOpen(); err == nil || !strings.Contains(err.Error(), "accepted upload of a in round 1 is damaged on disk") {
		t.Fatalf("coordinator on a damaged upload: %v", err)
	}
	os.WriteFile(dbPath, intact, 0o600)

	// Restart the coordinator: the accepted upload survived, the duplicate
	// is still refused, and the round completes with b.
	f.open(t)
	a.conn.Server, b.conn.Server = f.srv, f.srv
	if st := f.srv.Status(); st.Round != 1 || st.Phase != string(PhaseCollecting) || len(st.Accepted) != 1 {
		t.Fatalf("after restart: %v", st)
	}
	check("second upload after restart", a.conn, h2, ct(), codes.AlreadyExists)
	serr, cerrs := runAll(t, ctx, f.srv, b)
	if serr != nil || cerrs[0] != nil {
		t.Fatalf("finishing the round: %v %v", serr, cerrs)
	}
	if st := f.srv.Status(); st.GlobalVersion != 2 || len(st.Results) != 1 || st.Results[0].Examples != 10 {
		t.Fatalf("after round 1: %v", st)
	}
	// Round 1 is published: a's retry (its receipt lost) is still answered
	// as accepted, another upload is a duplicate.
	if r, err := a.conn.Upload(ctx, good.header, good.ct); err != nil || r.Round != 1 {
		t.Fatalf("retry after publication: %v %v", r, err)
	}
	check("second upload after publication", a.conn, h2, ct(), codes.AlreadyExists)
}

func TestRuleParse(t *testing.T) {
	for _, ok := range []string{"fedavg", "kron-exact", "median", "trimmed-mean", "trimmed-mean:0.2", "fedadam", "fedadam:0.1:0.01"} {
		if _, err := ParseRule(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "mean", "fedavg:1", "trimmed-mean:0.5", "trimmed-mean:x", "fedadam:0", "fedadam:1:2:3"} {
		if _, err := ParseRule(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	r, _ := ParseRule("kron-exact")
	if err := r.Check(adapter.KindLoRA, Policy{}); err == nil {
		t.Error("kron-exact accepted for LoRA")
	}
	// Each combination that cannot work is refused by the one constructor
	// (aggregate.NewStrategy), with the reason.
	dp := &DPPolicy{Clip: 1, Noise: 1, Delta: 1e-5}
	for _, c := range []struct {
		rule   string
		policy Policy
		want   string
	}{
		{"median", Policy{DP: dp}, "cannot be combined"},
		{"fedadam", Policy{SecAgg: &SecAggPolicy{}}, "reveals only the sum"},
		{"kron-exact", Policy{SecAgg: &SecAggPolicy{}}, "reveals only the sum"},
	} {
		r, _ := ParseRule(c.rule)
		if err := r.Check(adapter.KindKron, c.policy); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s with %+v: %v, want %q", c.rule, c.policy, err, c.want)
		}
	}
	for _, rule := range []string{"median", "fedadam", "kron-exact"} {
		r, _ := ParseRule(rule)
		if err := r.Check(adapter.KindKron, Policy{DP: &DPPolicy{Clip: 1, Noise: 1, Local: true}}); err != nil {
			t.Errorf("%s with local DP refused: %v", rule, err)
		}
	}
	for _, p := range []Policy{{DP: dp}, {SecAgg: &SecAggPolicy{}}, {DP: dp, SecAgg: &SecAggPolicy{}}} {
		if err := (Rule{Name: "fedavg"}).Check(adapter.KindLoRA, p); err != nil {
			t.Errorf("fedavg with %+v refused: %v", p, err)
		}
	}
}

func isTrained(ev ClientEvent) bool {
	_, ok := ev.(Trained)
	return ok
}

// TestUndecryptableUploadIsFatal: a client whose bundle carries another
// coordinator's encryption key has every upload refused as undecryptable;
// it stops with a message saying its bundle is wrong instead of retrying
// (it used to try forever, even with one round to run).
func TestUndecryptableUploadIsFatal(t *testing.T) {
	p := testPolicy()
	p.Rounds, p.CohortSize, p.Quorum = 1, 1, 1
	f := newTestFed(t, p, 0)
	defer f.st.Close()
	c := f.client(t, "a", 0.01, 5, 1)
	_, other, err := secure.GenerateIdentity(secure.AgeX25519)
	if err != nil {
		t.Fatal(err)
	}
	c.c.cfg.Recipient, err = secure.ParseRecipient(other)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go f.srv.Run(ctx)
	err = c.c.Run(ctx)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "bundle") || !strings.Contains(err.Error(), "cannot decrypt") {
		t.Fatalf("client: %v (deadline: %v)", err, ctx.Err())
	}
}

// TestUploadLimitRefusalsClassified: an upload over the size limit skips the
// round (the same update would be refused again); one refused because
// another is in flight or the coordinator is busy is retried.
func TestUploadLimitRefusalsClassified(t *testing.T) {
	p := testPolicy()
	f := newTestFed(t, p, 0)
	defer f.st.Close()
	a := f.client(t, "a", 0.01, 5, 1)
	f.srv.cfg.MaxUploadBytes = 10
	_, err := f.srv.AdmitUpload(a.conn.Peer, &fedpb.UploadHeader{Size: 11})
	if status.Code(err) != codes.ResourceExhausted || refusalReason(err) != ReasonTooLarge {
		t.Fatalf("oversized upload: %v (reason %q)", err, refusalReason(err))
	}
	if ev, ok := a.c.failed(ClientUploading, err).(Failed); !ok || ev.Class != SkipRound {
		t.Errorf("oversized upload classified %#v, want SkipRound", ev)
	}
	for _, reason := range []string{"in_flight", "busy"} {
		if ev, ok := a.c.failed(ClientUploading, exhausted(reason, "x")).(Failed); !ok || ev.Class != Retry {
			t.Errorf("%s refusal classified %#v, want Retry", reason, ev)
		}
	}
}

// statusCountingConn is a client's real in-memory connection that counts its
// Status calls.
type statusCountingConn struct {
	*MemoryConn
	status atomic.Int32
}

func (c *statusCountingConn) Status(ctx context.Context) (*fedpb.StatusResponse, error) {
	c.status.Add(1)
	return c.MemoryConn.Status(ctx)
}

// TestClientHeartbeat: while it trains, a client calls in every Heartbeat,
// which renews its lease on the coordinator; the calls stop with training.
func TestClientHeartbeat(t *testing.T) {
	p := testPolicy()
	f := newTestFed(t, p, 0)
	defer f.st.Close()
	a := f.client(t, "a", 0.01, 5, 1)
	if _, err := a.conn.Join(context.Background(), &fedpb.JoinRequest{Model: "test-base", Adapter: f.initial.Config.String(), Examples: 5}); err != nil {
		t.Fatal(err)
	}
	now := t0
	f.srv.cfg.Now = func() time.Time { return now }
	conn := &statusCountingConn{MemoryConn: a.conn}
	a.c.cfg.Conn, a.c.cfg.Heartbeat = conn, time.Millisecond
	now = t0.Add(time.Hour)
	stop := a.c.heartbeat(context.Background())
	for deadline := time.Now().Add(10 * time.Second); conn.status.Load() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d heartbeats in 10 s at one per millisecond", conn.status.Load())
		}
	}
	stop()
	n := conn.status.Load()
	time.Sleep(20 * time.Millisecond)
	if conn.status.Load() != n {
		t.Errorf("heartbeats went on after training: %d, then %d", n, conn.status.Load())
	}
	f.srv.mu.Lock()
	seen := f.srv.m.members["a"].LastSeen
	f.srv.mu.Unlock()
	if !seen.Equal(now) {
		t.Errorf("a last seen %v, want the heartbeat's %v", seen, now)
	}
}
