package main

// End-to-end tests with real processes on loopback: the coordinator and
// client binaries built from this tree, talking gRPC over mutually
// authenticated TLS, training the real TinyStories model from ../shared on
// a built-in synthetic task.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/internal/sharedtest"
	"github.com/kronfed/kronfed/secure"
	"github.com/kronfed/kronfed/store"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds the coordinator and client commands once per test run.
func binaries(t testing.TB) (coordinator, client string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "kronfed-e2e-")
		if buildErr != nil {
			return
		}
		for _, cmd := range []string{"coordinator", "client"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, cmd), "github.com/kronfed/kronfed/cmd/"+cmd).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", cmd, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	coordinator = filepath.Join(binDir, "coordinator")
	// A benchmark can compare against a coordinator built at another commit.
	if other := os.Getenv("KRONFED_BENCH_COORDINATOR"); other != "" {
		coordinator = other
	}
	return coordinator, filepath.Join(binDir, "client")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// proc is a running command whose output is collected and scanned.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func start(t testing.TB, name string, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() {
		p.err = p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- %s output:\n%s", p.name, p.output())
		}
	})
	return p
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// waitFor waits until the output matches re and returns the first match's
// submatches.
func (p *proc) waitFor(t testing.TB, re string, timeout time.Duration) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := rx.FindStringSubmatch(p.output()); m != nil {
			return m
		}
		select {
		case <-p.done:
			if m := rx.FindStringSubmatch(p.output()); m != nil {
				return m
			}
			t.Fatalf("%s exited (%v) before printing %q", p.name, p.err, re)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not print %q within %v", p.name, re, timeout)
	return nil
}

func (p *proc) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v", p.name, timeout)
		return nil
	}
}

func runCmd(t testing.TB, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// federation is a coordinator folder with enrolled clients and a config.
type federation struct {
	dir, config, modelPath string
	coord, client          string
	bundles                []string
}

func newFederation(t testing.TB, clients int, rounds string, extra string, initArgs ...string) *federation {
	t.Helper()
	coord, client := binaries(t)
	modelPath := sharedtest.Path(t, "models", "stories260K.gguf")
	dir := t.TempDir()
	f := &federation{dir: dir, modelPath: modelPath, coord: coord, client: client}
	runCmd(t, coord, append([]string{"init", "--dir", filepath.Join(dir, "coord")}, initArgs...)...)
	for i := range clients {
		b := filepath.Join(dir, fmt.Sprintf("c%d.bundle", i))
		runCmd(t, coord, "enroll", "--dir", filepath.Join(dir, "coord"), "--name", fmt.Sprintf("c%d", i), "--out", b)
		f.bundles = append(f.bundles, b)
	}
	f.config = filepath.Join(dir, "coordinator.toml")
	cfg := fmt.Sprintf(`dir = "coord"
listen = "127.0.0.1:0"
%s
[adapter]
model = %q
kind = "kron"
rank = 4

%s

[train]
epochs = 1
batch = 8
lr = 0.003
bits = 8
`, extra, modelPath, rounds)
	if err := os.WriteFile(f.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// listenOn makes the coordinator listen on addr instead of a free loopback
// port.
func (f *federation) listenOn(t testing.TB, addr string) {
	t.Helper()
	cfg, err := os.ReadFile(f.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), `listen = "127.0.0.1:0"`, fmt.Sprintf("listen = %q", addr), 1))
	if err := os.WriteFile(f.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *federation) serve(t testing.TB, args ...string) (*proc, string) {
	t.Helper()
	p := start(t, "coordinator", f.coord, append([]string{"serve", "--config", f.config, "--linger", "5s"}, args...)...)
	m := p.waitFor(t, `listening on (127\.0\.0\.1:\d+)`, 30*time.Second)
	return p, m[1]
}

func (f *federation) join(t testing.TB, i int, addr string, args ...string) *proc {
	t.Helper()
	return start(t, fmt.Sprintf("client c%d", i), f.client, append([]string{"join", "--coordinator", addr, "--bundle", f.bundles[i],
		"--model", f.modelPath, "--task", "add-mod-10", "--shard", fmt.Sprintf("%d/%d", i, len(f.bundles)), "--eval-limit", "8", "--train-limit", "16"}, args...)...)
}

// dial connects to addr as enrolled client i, from this process (an
// attacker in a test, not a client process); closed at cleanup.
func (f *federation) dial(t testing.TB, i int, addr string) (*secure.Bundle, *fed.GRPCConn) {
	t.Helper()
	bundle, err := secure.ReadBundle(f.bundles[i])
	if err != nil {
		t.Fatal(err)
	}
	tlsConf, err := bundle.ClientTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := fed.DialGRPC(addr, tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return bundle, conn
}

// results reads the published round results from the coordinator's store
// (after it exited).
func (f *federation) results(t *testing.T) []*fedpb.RoundResult {
	t.Helper()
	st, err := store.Open(filepath.Join(f.dir, "coord", "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var out []*fedpb.RoundResult
	err = st.Rounds(0, func(round uint64, rec []byte) error {
		var r fedpb.RoundResult
		if err := proto.Unmarshal(rec, &r); err != nil {
			return err
		}
		out = append(out, &r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// finish waits for the coordinator (up to timeout) and the clients to exit
// cleanly and returns the published round results, which must number
// rounds.
func (f *federation) finish(t *testing.T, coord *proc, clients []*proc, timeout time.Duration, rounds int) []*fedpb.RoundResult {
	t.Helper()
	if err := coord.wait(t, timeout); err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	for _, c := range clients {
		if err := c.wait(t, 30*time.Second); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	res := f.results(t)
	if len(res) != rounds {
		t.Fatalf("results: %v", res)
	}
	return res
}

func scrape(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestEndToEnd: a coordinator and three clients run three rounds; metrics
// and status report them; a client from a foreign CA is refused.
func TestEndToEnd(t *testing.T) {
	f := newFederation(t, 3, `[rounds]
rounds = 3
cohort = 3
quorum = 3
timeout = "60s"
seed = 5`, "")
	coord, addr := f.serve(t, "--metrics", "127.0.0.1:0")
	metricsURL := coord.waitFor(t, `metrics on (http://\S+)`, 5*time.Second)[1]
	// A client whose certificate comes from another federation's CA.
	other := t.TempDir()
	runCmd(t, f.coord, "init", "--dir", filepath.Join(other, "coord"))
	runCmd(t, f.coord, "enroll", "--dir", filepath.Join(other, "coord"), "--name", "c0", "--out", filepath.Join(other, "x.bundle"))
	out, err := exec.Command(f.client, "join", "--coordinator", addr, "--bundle", filepath.Join(other, "x.bundle"),
		"--model", f.modelPath, "--task", "add-mod-10").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not from this federation's CA") {
		t.Fatalf("client of a foreign CA: err %v, output:\n%s", err, out)
	}

	var clients []*proc
	for i := range 3 {
		clients = append(clients, f.join(t, i, addr, "--out", filepath.Join(f.dir, fmt.Sprintf("c%d-final.safetensors", i))))
	}

	// The coordinator lingers after its last round: read its metrics and status then.
	coord.waitFor(t, `all rounds published`, 60*time.Second)
	m := scrape(t, metricsURL)
	for _, want := range []string{`kronfed_rounds_total{outcome="published"}`, `kronfed_uploads_total{reason="",result="accepted"}`, `kronfed_upload_wire_bytes_total`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	st := runCmd(t, f.coord, "status", "--addr", addr, "--dir", filepath.Join(f.dir, "coord"))
	// Each client reports what it computes on, from its --device (cpu).
	if !strings.Contains(st, "c0") || !strings.Contains(st, "published") || !strings.Contains(st, "cpu:") {
		t.Errorf("status output:\n%s", st)
	}

	if err := coord.wait(t, 120*time.Second); err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	for i, c := range clients {
		if err := c.wait(t, 30*time.Second); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		c.waitFor(t, `done after 3 rounds`, time.Second)
		// Wire bytes (8-bit factors, encrypted) are under float32. Not by
		// 4×: at rank 4, B1 (d_out×4) carries one float32 scale per row of
		// four 1-byte codes, so it shrinks only 2× (see BENCHMARKS.md).
		m := c.waitFor(t, `uploaded (\d+) bytes \(float32 would be (\d+)`, time.Second)
		var wire, raw int
		fmt.Sscan(m[1], &wire)
		fmt.Sscan(m[2], &raw)
		if !(wire > 0 && wire < raw*7/10) {
			t.Errorf("client %d uploaded %d bytes for %d raw", i, wire, raw)
		}
	}
	res := f.results(t)
	if len(res) != 3 {
		t.Fatalf("%d round results", len(res))
	}
	for _, r := range res {
		if r.Outcome != "published" || len(r.Clients) != 3 || r.GlobalVersion != r.Round+1 {
			t.Errorf("round %d: %v", r.Round, r)
		}
	}

	// The result out of the stopped federation: the coordinator's export is,
	// byte for byte, the final adapter every client verified and kept.
	coordDir := filepath.Join(f.dir, "coord")
	exported := filepath.Join(f.dir, "final.safetensors")
	if out := runCmd(t, f.coord, "export", "--dir", coordDir, "--out", exported); !strings.Contains(out, "global version 4 (round 3") {
		t.Errorf("export: %s", out)
	}
	want, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		got, err := os.ReadFile(filepath.Join(f.dir, fmt.Sprintf("c%d-final.safetensors", i)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("client %d's final adapter (%v) differs from the coordinator's export", i, err)
		}
	}
	if _, err := adapter.ReadFile(exported); err != nil {
		t.Errorf("the exported file does not read back: %v", err)
	}
	runCmd(t, f.coord, "export", "--dir", coordDir, "--version", "2", "--format", "peft", "--out", filepath.Join(f.dir, "peft"))
	if _, err := os.Stat(filepath.Join(f.dir, "peft", "adapter_config.json")); err != nil {
		t.Error(err)
	}
	if out, err := exec.Command(f.coord, "export", "--dir", coordDir, "--version", "9", "--out", filepath.Join(f.dir, "x")).CombinedOutput(); err == nil {
		t.Errorf("export of a version that was never published succeeded:\n%s", out)
	}
	// Every round still in the store recomputes to what was published.
	if out := runCmd(t, f.coord, "verify", "--config", f.config); !strings.Contains(out, "2 equal to their replay, 1 not replayable") ||
		!strings.Contains(out, "round 1: not replayed: its uploads were pruned") {
		t.Errorf("verify:\n%s", out)
	}
	// And its status, read from the store now that nothing answers.
	st = runCmd(t, f.coord, "status", "--addr", addr, "--dir", coordDir)
	if !strings.Contains(st, "stopped") || !strings.Contains(st, "global version 4") || !strings.Contains(st, "published") {
		t.Errorf("offline status output:\n%s", st)
	}
	// A lost or truncated state file never silently starts a new federation.
	state := filepath.Join(coordDir, "state.db")
	if err := os.Rename(state, state+".bak"); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(f.coord, "serve", "--config", f.config).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is missing, but a federation was started") || !strings.Contains(string(out), "--new-federation") {
		t.Errorf("serve without its state file: %v\n%s", err, out)
	}
	os.WriteFile(state, nil, 0o600)
	out, err = exec.Command(f.coord, "serve", "--config", f.config).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "empty (0 bytes)") {
		t.Errorf("serve on an empty state file: %v\n%s", err, out)
	}
	os.Remove(state)
	if err := os.Rename(state+".bak", state); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(f.coord, "serve", "--config", f.config, "--new-federation").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "exists; move it away first") {
		t.Errorf("--new-federation over an existing state file: %v\n%s", err, out)
	}
}

// TestClientKilledMidRound: one of three clients is killed while it trains;
// gossip reports it failed and the round completes with the quorum. The
// first round waits for all three (start_clients), so the killed round's
// cohort holds two live clients; later rounds run with two (min_clients).
func TestClientKilledMidRound(t *testing.T) {
	gossip := freeAddr(t)
	f := newFederation(t, 3, `[rounds]
rounds = 3
fraction = 1.0
min_clients = 2
start_clients = 3
quorum = 2
timeout = "20s"`, fmt.Sprintf("gossip = %q", gossip))
	coord, addr := f.serve(t)
	var clients []*proc
	for i := range 3 {
		args := []string{"--gossip-seed", gossip}
		if i == 2 { // c2 trains on its whole shard: still training when killed
			args = append(args, "--train-limit", "0")
		}
		clients = append(clients, f.join(t, i, addr, args...))
	}
	sel := clients[2].waitFor(t, `selected.*round=(\d+)`, 60*time.Second)
	clients[2].kill()
	m := coord.waitFor(t, `aggregated round=`+sel[1]+` .*clients=(\d+)`, 60*time.Second)
	if m[1] != "2" {
		t.Fatalf("round %s, whose client c2 was killed while training, aggregated %s clients", sel[1], m[1])
	}
	f.finish(t, coord, clients[:2], 90*time.Second, 3)
	logLines(t, coord, "client down", "aggregated", "round started")
}

// TestCoordinatorKilledAndRestarted: the coordinator is killed (SIGKILL)
// right after it accepted an upload; restarted on the same store and
// address, it continues the round with that upload, and every client
// finishes all rounds.
func TestCoordinatorKilledAndRestarted(t *testing.T) {
	f := newFederation(t, 3, `[rounds]
rounds = 3
cohort = 3
quorum = 3
timeout = "90s"`, "")
	listen := freeAddr(t)
	coord, addr := f.serve(t, "--listen", listen)
	var clients []*proc
	for i := range 3 {
		clients = append(clients, f.join(t, i, addr))
	}
	m := coord.waitFor(t, `upload accepted" client=(c\d) round=2`, 90*time.Second)
	coord.kill()
	first := m[1]
	coord2, _ := f.serve(t, "--listen", listen)
	coord2.waitFor(t, `resumed.*round=2`, 10*time.Second)
	if err := coord2.wait(t, 120*time.Second); err != nil {
		t.Fatalf("restarted coordinator: %v", err)
	}
	for _, c := range clients {
		if err := c.wait(t, 30*time.Second); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		c.waitFor(t, `done after 3 rounds`, time.Second)
	}
	res := f.results(t)
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	if r := res[1]; r.Outcome != "published" || len(r.Clients) != 3 {
		t.Fatalf("round 2 after the restart: %v", r)
	}
	logLines(t, coord, "upload accepted", "aggregated")
	logLines(t, coord2, "resumed", "upload accepted", "aggregated")
	// The upload accepted before the kill was not sent again as a new one.
	if strings.Contains(coord2.output(), fmt.Sprintf(`upload accepted" client=%s round=2`, first)) {
		t.Fatalf("%s's round-2 upload, accepted before the kill, was accepted again after the restart", first)
	}
}

// logLines logs p's output lines containing any of subs (seen with -v).
func logLines(t testing.TB, p *proc, subs ...string) {
	t.Helper()
	for _, line := range strings.Split(p.output(), "\n") {
		for _, s := range subs {
			if strings.Contains(line, s) {
				t.Logf("%s: %s", p.name, line)
				break
			}
		}
	}
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestSecureAggregationEndToEnd: SecAgg+ rounds with real processes. Four
// clients exchange keys and shares through the coordinator; c3 is killed
// while training in round 1, after sharing, so the coordinator unmasks the
// three survivors' sum by reconstructing c3's pairwise masks from its
// neighbours' shares; round 2 runs without it.
func TestSecureAggregationEndToEnd(t *testing.T) {
	gossip := freeAddr(t)
	f := newFederation(t, 4, `[rounds]
rounds = 2
fraction = 1.0
min_clients = 3
start_clients = 4
quorum = 3
timeout = "40s"

[secure_aggregation]
enabled = true
range = 0.05`, fmt.Sprintf("gossip = %q", gossip))
	coord, addr := f.serve(t)
	var clients []*proc
	for i := range 4 {
		args := []string{"--gossip-seed", gossip}
		if i == 3 { // c3 trains on its whole shard: still training when killed
			args = append(args, "--train-limit", "0")
		}
		clients = append(clients, f.join(t, i, addr, args...))
	}
	clients[3].waitFor(t, `secure aggregation keys exchanged.*round=1`, 60*time.Second)
	clients[3].kill()
	m := coord.waitFor(t, `aggregated round=1 .*clients=(\d+)`, 90*time.Second)
	if m[1] != "3" {
		t.Fatalf("round 1, whose client c3 was killed after sharing its keys, aggregated %s clients", m[1])
	}
	res := f.finish(t, coord, clients[:3], 90*time.Second, 2)
	for _, r := range res {
		if r.Outcome != "published" || r.Survivors != 3 || !strings.HasPrefix(r.SecureAggregation, "secagg+") {
			t.Fatalf("round %d: %v", r.Round, r)
		}
	}
	logLines(t, coord, "secure aggregation", "unmask stage closed", "aggregated")
}

// TestClientsOfTheirOwnShape: three client processes train adapters of
// three shapes — the federation's (rank 4, dA2 2), rank 2, and rank 2 with
// dA2 4 — in one federation with rule hetero-exact; every round publishes
// with all three, and `coordinator verify` recomputes them byte for byte.
func TestClientsOfTheirOwnShape(t *testing.T) {
	f := newFederation(t, 3, `[rounds]
rounds = 2
cohort = 3
quorum = 3
timeout = "60s"
rule = "hetero-exact"`, "keep_uploads = 2")
	coord, addr := f.serve(t)
	shapes := [][]string{nil, {"--rank", "2"}, {"--rank", "2", "--dA2", "4"}}
	var clients []*proc
	for i, args := range shapes {
		clients = append(clients, f.join(t, i, addr, args...))
	}
	clients[2].waitFor(t, `trains its own adapter, kron-lora \(r=2, dA2=4`, 30*time.Second)
	res := f.finish(t, coord, clients, 120*time.Second, 2)
	for _, r := range res {
		if r.Outcome != "published" || len(r.Clients) != 3 {
			t.Fatalf("round %d: %v", r.Round, r)
		}
	}
	if out := runCmd(t, f.coord, "verify", "--config", f.config); !strings.Contains(out, "2 equal to their replay") {
		t.Errorf("verify:\n%s", out)
	}
}

// TestClientWaitsForCoordinator: a client started before its coordinator
// waits (backoff with jitter, saying so) instead of quitting, and takes
// part once the coordinator is up on the address in its bundle's config.
func TestClientWaitsForCoordinator(t *testing.T) {
	f := newFederation(t, 1, `[rounds]
rounds = 1
cohort = 1
quorum = 1
timeout = "60s"`, "")
	addr := freeAddr(t)
	f.listenOn(t, addr)
	client := f.join(t, 0, addr, "--wait", "60s")
	client.waitFor(t, `coordinator \S+ not reachable yet .*; retrying in`, 20*time.Second)
	client.waitFor(t, `not reachable yet .*waited [1-9]`, 20*time.Second) // still waiting a second later
	coord, _ := f.serve(t)
	f.finish(t, coord, []*proc{client}, 90*time.Second, 1)
	// With no coordinator and a short wait, the client gives up naming
	// the address and the flag.
	out, err := exec.Command(f.client, "join", "--coordinator", freeAddr(t), "--bundle", f.bundles[0], "--model", f.modelPath,
		"--task", "add-mod-10", "--wait", "2s").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no coordinator answered at") || !strings.Contains(string(out), "raise --wait") {
		t.Fatalf("no coordinator: %v\n%s", err, out)
	}
}

// TestModelDigestCheckedAtJoin: a client whose model file differs by one
// byte from the coordinator's — same name, same shapes, other weights — is
// refused at join, naming both digests.
func TestModelDigestCheckedAtJoin(t *testing.T) {
	f := newFederation(t, 1, `[rounds]
rounds = 1
cohort = 1
quorum = 1
timeout = "30s"`, "")
	coord, addr := f.serve(t)
	coord.waitFor(t, `clients must hold the model files sha256:[0-9a-f]{64}`, 5*time.Second)
	b, err := os.ReadFile(f.modelPath)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 1 // the last byte is tensor data
	other := filepath.Join(t.TempDir(), "stories260K.gguf")
	if err := os.WriteFile(other, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(f.client, "join", "--coordinator", addr, "--bundle", f.bundles[0], "--model", other,
		"--task", "add-mod-10", "--wait", "10s").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "base model files differ") || !strings.Contains(string(out), "identical model files") {
		t.Fatalf("a client with other weights: %v\n%s", err, out)
	}
}
