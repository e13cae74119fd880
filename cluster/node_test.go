package cluster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

var (
	testKey  = bytes.Repeat([]byte{0x42}, 32)
	otherKey = bytes.Repeat([]byte{0x17}, 32)
)

// testLogger discards logs unless KRONFED_TEST_LOG is set (then debug to
// stderr). t.Log is not used: memberlist may log after a test returns.
func testLogger() *slog.Logger {
	if os.Getenv("KRONFED_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// testConfig is a loopback node on a free port with fast timings.
func testConfig(name string, meta Meta, key []byte) *Config {
	c := DefaultConfig(name)
	c.BindAddr = "127.0.0.1"
	c.BindPort = 0
	c.Profile = ProfileLocal
	c.Meta = meta
	c.SecretKey = key
	c.Logger = testLogger()
	c.JoinBackoff = 50 * time.Millisecond
	c.JoinBackoffMax = 400 * time.Millisecond
	return c
}

func startNode(t *testing.T, cfg *Config) *Node {
	t.Helper()
	n, err := Create(cfg)
	if err != nil {
		t.Fatalf("Create(%s): %v", cfg.Name, err)
	}
	t.Cleanup(func() { _ = n.Shutdown() })
	return n
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitEvent reads n's events until one matches.
func waitEvent(t *testing.T, n *Node, d time.Duration, what string, match func(Event) bool) Event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-n.Events():
			if !ok {
				t.Fatalf("events of %s closed while waiting for %s", n.Name(), what)
			}
			if match(ev) {
				return ev
			}
		case <-timer.C:
			t.Fatalf("timed out after %v waiting for event %s on %s", d, what, n.Name())
		}
	}
}

func names(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Name
	}
	return out
}

var (
	coordMeta = Meta{Role: RoleCoordinator, GRPC: "127.0.0.1:8443", Model: "stories260K", Adapter: "kron-r8", Capability: "cpu:4"}
	clientA   = Meta{Role: RoleClient, Model: "stories260K", Examples: 100, Capability: "cpu:2"}
	clientB   = Meta{Role: RoleClient, Model: "stories260K", Examples: 250, Capability: "cuda:H200"}
)

// formCluster starts a coordinator and two clients; client-a joins through
// the coordinator, client-b through client-a: one seed each.
func formCluster(t *testing.T) (coord, a, b *Node) {
	t.Helper()
	coord = startNode(t, testConfig("coord", coordMeta, testKey))
	a = startNode(t, testConfig("client-a", clientA, testKey))
	b = startNode(t, testConfig("client-b", clientB, testKey))
	ctx := ctxFor(t, 10*time.Second)
	if k, err := a.Join(ctx, []string{coord.LocalAddr()}); err != nil || k != 1 {
		t.Fatalf("client-a Join = %d, %v", k, err)
	}
	if k, err := b.Join(ctx, []string{a.LocalAddr()}); err != nil || k != 1 {
		t.Fatalf("client-b Join = %d, %v", k, err)
	}
	for _, n := range []*Node{coord, a, b} {
		waitFor(t, 10*time.Second, n.Name()+" to see 3 members", func() bool { return n.NumMembers() == 3 })
	}
	return coord, a, b
}

func withVersion(m Meta) Meta {
	m.Version = MetaVersion
	return m
}

func TestClusterFormsViaOneSeed(t *testing.T) {
	coord, a, b := formCluster(t)
	want := []string{"client-a", "client-b", "coord"}
	addrs := map[string]string{"coord": coord.LocalAddr(), "client-a": a.LocalAddr(), "client-b": b.LocalAddr()}
	metas := map[string]Meta{"coord": withVersion(coordMeta), "client-a": withVersion(clientA), "client-b": withVersion(clientB)}
	for _, n := range []*Node{coord, a, b} {
		waitFor(t, 10*time.Second, n.Name()+" to see all metadata", func() bool {
			ms := n.Members()
			if !slices.Equal(names(ms), want) {
				return false
			}
			for _, m := range ms {
				if m.MetaErr != nil || m.Meta != metas[m.Name] || m.Addr != addrs[m.Name] {
					return false
				}
			}
			return true
		})
		c, ok := n.Coordinator()
		if !ok || c.Name != "coord" || c.Meta.GRPC != "127.0.0.1:8443" {
			t.Errorf("%s: Coordinator() = %+v, %v", n.Name(), c, ok)
		}
		if got := names(n.Clients()); !slices.Equal(got, []string{"client-a", "client-b"}) {
			t.Errorf("%s: Clients() = %v", n.Name(), got)
		}
	}
	if got := coord.Clients()[1].Meta.Examples; got != 250 {
		t.Errorf("coordinator sees client-b examples %d, want 250", got)
	}
	// The coordinator's events report its own join and both clients'.
	joined := map[string]bool{}
	for len(joined) < len(want) {
		ev := waitEvent(t, coord, 5*time.Second, "joins of all members", func(ev Event) bool { return ev.Kind == MemberJoin })
		joined[ev.Member.Name] = true
	}
	if len(joined) != 3 || !joined["coord"] || !joined["client-a"] || !joined["client-b"] {
		t.Errorf("join events for %v", joined)
	}
	if l := a.Local(); l.Name != "client-a" || l.Addr != a.LocalAddr() || l.Meta != withVersion(clientA) {
		t.Errorf("Local() = %+v", l)
	}
}

func TestUpdateMetaPropagates(t *testing.T) {
	coord, a, b := formCluster(t)
	next := Meta{Role: RoleClient, Model: "stories260K", Adapter: "round-3", Examples: 555, Capability: "cpu:2"}
	if err := a.UpdateMeta(ctxFor(t, 5*time.Second), next); err != nil {
		t.Fatalf("UpdateMeta: %v", err)
	}
	for _, n := range []*Node{coord, b} {
		waitFor(t, 10*time.Second, n.Name()+" to see client-a's new metadata", func() bool {
			for _, m := range n.Clients() {
				if m.Name == "client-a" {
					return m.Meta == withVersion(next)
				}
			}
			return false
		})
	}
	ev := waitEvent(t, coord, 5*time.Second, "update of client-a", func(ev Event) bool {
		return ev.Kind == MemberUpdate && ev.Member.Name == "client-a"
	})
	if ev.Member.Meta.Examples != 555 {
		t.Errorf("update event carries %+v", ev.Member.Meta)
	}
	if got := a.Local().Meta; got != withVersion(next) {
		t.Errorf("Local().Meta = %+v", got)
	}
	// Invalid metadata is refused and changes nothing.
	if err := a.UpdateMeta(context.Background(), Meta{Role: RoleClient, Examples: -1}); err == nil {
		t.Error("UpdateMeta accepted negative examples")
	}
	if err := a.UpdateMeta(context.Background(), Meta{Role: RoleClient, Model: strings.Repeat("x", 600)}); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("UpdateMeta of oversize meta: %v", err)
	}
	if got := a.Local().Meta; got != withVersion(next) {
		t.Errorf("refused update changed Local().Meta to %+v", got)
	}
}

func TestLeaveIsSeen(t *testing.T) {
	coord, a, b := formCluster(t)
	if err := b.Leave(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	waitEvent(t, coord, 10*time.Second, "leave of client-b", func(ev Event) bool {
		return ev.Kind == MemberLeave && ev.Member.Name == "client-b"
	})
	for _, n := range []*Node{coord, a} {
		waitFor(t, 10*time.Second, n.Name()+" to drop client-b", func() bool {
			return slices.Equal(names(n.Members()), []string{"client-a", "coord"})
		})
	}
	if got := names(coord.Clients()); !slices.Equal(got, []string{"client-a"}) {
		t.Errorf("Clients() after leave = %v", got)
	}
	// A node that left keeps running until Shutdown but cannot publish.
	if err := b.Leave(ctxFor(t, time.Second)); err != nil {
		t.Errorf("second Leave: %v", err)
	}
	if err := b.UpdateMeta(context.Background(), clientB); !errors.Is(err, ErrLeft) {
		t.Errorf("UpdateMeta after Leave = %v, want ErrLeft", err)
	}
	if _, err := b.Join(context.Background(), []string{coord.LocalAddr()}); !errors.Is(err, ErrLeft) {
		t.Errorf("Join after Leave = %v, want ErrLeft", err)
	}
}

func TestCrashIsDetected(t *testing.T) {
	coord, a, b := formCluster(t)
	start := time.Now()
	if err := b.Shutdown(); err != nil { // no Leave: a crash
		t.Fatal(err)
	}
	for _, n := range []*Node{coord, a} {
		waitFor(t, 30*time.Second, n.Name()+" to notice client-b failed", func() bool {
			return slices.Equal(names(n.Members()), []string{"client-a", "coord"})
		})
	}
	t.Logf("crash noticed by both survivors after %v", time.Since(start).Round(10*time.Millisecond))
	waitEvent(t, coord, 5*time.Second, "leave of client-b", func(ev Event) bool {
		return ev.Kind == MemberLeave && ev.Member.Name == "client-b"
	})
}

func TestWrongKeyCannotJoin(t *testing.T) {
	coord := startNode(t, testConfig("coord", coordMeta, testKey))
	intruder := startNode(t, testConfig("intruder", clientA, otherKey))
	assertCannotJoin(t, intruder, coord)
}

func TestInsecureNodeCannotJoinEncryptedCluster(t *testing.T) {
	coord := startNode(t, testConfig("coord", coordMeta, testKey))
	cfg := testConfig("plain", clientA, nil)
	cfg.AllowInsecure = true
	assertCannotJoin(t, startNode(t, cfg), coord)
}

func TestLabelMismatchCannotJoin(t *testing.T) {
	coord := startNode(t, testConfig("coord", coordMeta, testKey))
	cfg := testConfig("other-federation", clientA, testKey)
	cfg.Label = "another-federation"
	assertCannotJoin(t, startNode(t, cfg), coord)
}

func assertCannotJoin(t *testing.T, n, seed *Node) {
	t.Helper()
	const budget = 1500 * time.Millisecond
	start := time.Now()
	k, err := n.Join(ctxFor(t, budget), []string{seed.LocalAddr()})
	elapsed := time.Since(start)
	if err == nil || k != 0 {
		t.Fatalf("Join = %d, %v; want refusal", k, err)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), seed.LocalAddr()) {
		t.Errorf("error should wrap the deadline and name the seed: %v", err)
	}
	if elapsed > budget+time.Second {
		t.Errorf("Join took %v with a %v context", elapsed, budget)
	}
	t.Logf("refused after %v: %v", elapsed.Round(time.Millisecond), err)
	if got := names(seed.Members()); !slices.Equal(got, []string{seed.Name()}) {
		t.Errorf("seed lists %v after a refused join", got)
	}
	if got := n.NumMembers(); got != 1 {
		t.Errorf("refused node sees %d members", got)
	}
}

func TestInsecureClusterWhenAllowed(t *testing.T) {
	c1 := testConfig("coord", coordMeta, nil)
	c1.AllowInsecure = true
	c2 := testConfig("client-a", clientA, nil)
	c2.AllowInsecure = true
	coord, a := startNode(t, c1), startNode(t, c2)
	if _, err := a.Join(ctxFor(t, 5*time.Second), []string{coord.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "coordinator to see the client", func() bool { return len(coord.Clients()) == 1 })
}

func TestCreateValidation(t *testing.T) {
	ok := func() *Config { return testConfig("n", clientA, testKey) }
	cases := map[string]struct {
		mod  func(*Config)
		want string
	}{
		"empty name":        {func(c *Config) { c.Name = "" }, "Name"},
		"no key":            {func(c *Config) { c.SecretKey = nil }, "SecretKey is required"},
		"short key":         {func(c *Config) { c.SecretKey = make([]byte, 15) }, "15 bytes"},
		"odd key":           {func(c *Config) { c.SecretKey = make([]byte, 20) }, "want 16, 24 or 32"},
		"bad profile":       {func(c *Config) { c.Profile = "fast" }, "Profile"},
		"negative events":   {func(c *Config) { c.Events = -1 }, "Events"},
		"bad port":          {func(c *Config) { c.BindPort = 70000 }, "BindPort"},
		"hostname bind":     {func(c *Config) { c.BindAddr = "localhost" }, "BindAddr"},
		"bad advertise":     {func(c *Config) { c.AdvertiseAddr = "not-an-ip" }, "AdvertiseAddr"},
		"no role":           {func(c *Config) { c.Meta.Role = "" }, "role"},
		"oversize meta":     {func(c *Config) { c.Meta.Model = strings.Repeat("m", 600) }, "limit 512"},
		"negative examples": {func(c *Config) { c.Meta.Examples = -3 }, "negative examples"},
		"long label":        {func(c *Config) { c.Label = strings.Repeat("l", 300) }, "Label"},
	}
	for name, tc := range cases {
		c := ok()
		tc.mod(c)
		n, err := Create(c)
		if err == nil {
			_ = n.Shutdown()
			t.Errorf("%s: Create succeeded", name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", name, err, tc.want)
		}
	}
	if _, err := Create(nil); err == nil {
		t.Error("Create(nil) succeeded")
	}
	// 16- and 24-byte keys are fine, and Create leaves the Config alone.
	for _, size := range []int{16, 24} {
		c := ok()
		c.SecretKey = make([]byte, size)
		n := startNode(t, c)
		if c.BindPort != 0 || c.Meta.Version != 0 {
			t.Errorf("Create modified the caller's Config: %+v", c)
		}
		if !strings.HasPrefix(n.LocalAddr(), "127.0.0.1:") || strings.HasSuffix(n.LocalAddr(), ":0") {
			t.Errorf("LocalAddr() = %q", n.LocalAddr())
		}
	}
}

func TestKeyHelpers(t *testing.T) {
	k, err := GenerateKey()
	if err != nil || len(k) != 32 {
		t.Fatalf("GenerateKey = %d bytes, %v", len(k), err)
	}
	back, err := ParseKey(EncodeKey(k) + "\n")
	if err != nil || !bytes.Equal(back, k) {
		t.Fatalf("ParseKey(EncodeKey) = %x, %v", back, err)
	}
	if _, err := ParseKey("!!!"); err == nil {
		t.Error("ParseKey accepted non-base64")
	}
	if _, err := ParseKey(EncodeKey(make([]byte, 10))); err == nil {
		t.Error("ParseKey accepted a 10-byte key")
	}
}

func TestJoinArguments(t *testing.T) {
	n := startNode(t, testConfig("n", clientA, testKey))
	if _, err := n.Join(context.Background(), nil); err == nil {
		t.Error("Join with no seeds succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := n.Join(ctx, []string{"127.0.0.1:1"})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Join with a cancelled context: %v", err)
	}
	// Nothing listens on the seed: retried until the deadline, last error kept.
	_, err = n.Join(ctxFor(t, 500*time.Millisecond), []string{"127.0.0.1:1"})
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "last error") {
		t.Errorf("Join to a closed port: %v", err)
	}
	t.Log(err)
}

func TestShutdownIsIdempotentAndClosesEvents(t *testing.T) {
	coord, a, _ := formCluster(t)
	if err := a.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if err := a.Shutdown(); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
	timeout := time.After(5 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-a.Events():
		case <-timeout:
			t.Fatal("Events not closed after Shutdown")
		}
	}
	if err := a.Leave(context.Background()); !errors.Is(err, ErrShutdown) {
		t.Errorf("Leave after Shutdown = %v", err)
	}
	if _, err := a.Join(context.Background(), []string{coord.LocalAddr()}); !errors.Is(err, ErrShutdown) {
		t.Errorf("Join after Shutdown = %v", err)
	}
	if err := a.UpdateMeta(context.Background(), clientA); !errors.Is(err, ErrShutdown) {
		t.Errorf("UpdateMeta after Shutdown = %v", err)
	}
	if m := a.Members(); m != nil || a.NumMembers() != 0 {
		t.Errorf("Members after Shutdown = %v", m)
	}
	// Leave racing Shutdown never panics.
	n := startNode(t, testConfig("racer", clientA, testKey))
	if _, err := n.Join(ctxFor(t, 5*time.Second), []string{coord.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Leave(ctxFor(t, 2*time.Second)) }()
	_ = n.Shutdown()
	if err := <-done; err != nil && !errors.Is(err, ErrShutdown) {
		t.Logf("Leave racing Shutdown: %v", err)
	}
}

func TestDroppedEventsAreCounted(t *testing.T) {
	cfg := testConfig("coord", coordMeta, testKey)
	cfg.Events = 1 // filled by the coordinator's own join
	coord := startNode(t, cfg)
	ctx := ctxFor(t, 5*time.Second)
	for _, name := range []string{"client-a", "client-b"} {
		c := startNode(t, testConfig(name, clientA, testKey))
		if _, err := c.Join(ctx, []string{coord.LocalAddr()}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "dropped events to be counted", func() bool { return coord.Stats().DroppedEvents >= 2 })
	if got := coord.NumMembers(); got != 3 {
		t.Errorf("Members is not the source of truth: %d members", got)
	}
	if ev := <-coord.Events(); ev.Kind != MemberJoin || ev.Member.Name != "coord" {
		t.Errorf("first event = %+v", ev)
	}
}

// rawDelegate lets a bare memberlist node publish arbitrary metadata.
type rawDelegate struct{ meta []byte }

func (d rawDelegate) NodeMeta(int) []byte               { return d.meta }
func (rawDelegate) NotifyMsg([]byte)                    {}
func (rawDelegate) GetBroadcasts(int, int) [][]byte     { return nil }
func (rawDelegate) LocalState(bool) []byte              { return nil }
func (rawDelegate) MergeRemoteState(buf []byte, _ bool) {}

func TestPeerWithBadMetaIsListedButSkipped(t *testing.T) {
	coord := startNode(t, testConfig("coord", coordMeta, testKey))
	mc := memberlist.DefaultLocalConfig()
	mc.Name = "odd"
	mc.BindAddr, mc.BindPort = "127.0.0.1", 0
	mc.SecretKey = testKey
	mc.Label = DefaultLabel
	mc.Delegate = rawDelegate{meta: []byte(`{"role":"superuser","v":1}`)}
	mc.Logger = newMemberlistLogger(testLogger())
	ml, err := memberlist.Create(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ml.Shutdown() })
	if _, err := ml.Join([]string{coord.LocalAddr()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "coordinator to list the odd peer", func() bool { return coord.NumMembers() == 2 })
	ms := coord.Members()
	if len(ms) != 2 || ms[1].Name != "odd" || ms[1].MetaErr == nil || !strings.Contains(ms[1].MetaErr.Error(), "superuser") {
		t.Fatalf("Members() = %+v", ms)
	}
	if len(coord.Clients()) != 0 {
		t.Errorf("Clients() includes a member whose meta did not decode: %+v", coord.Clients())
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	runtime.GC()
	baseline := runtime.NumGoroutine()
	func() {
		var nodes []*Node
		for i, m := range []Meta{coordMeta, clientA, clientB} {
			n, err := Create(testConfig([]string{"coord", "client-a", "client-b"}[i], m, testKey))
			if err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes, n)
		}
		ctx := ctxFor(t, 5*time.Second)
		for _, n := range nodes[1:] {
			if _, err := n.Join(ctx, []string{nodes[0].LocalAddr()}); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, 5*time.Second, "cluster of 3", func() bool { return nodes[0].NumMembers() == 3 })
		if err := nodes[1].UpdateMeta(ctx, clientB); err != nil {
			t.Fatal(err)
		}
		if err := nodes[2].Leave(ctx); err != nil {
			t.Fatal(err)
		}
		// A join abandoned by its context, then Shutdown.
		short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, _ = nodes[2].Join(short, []string{"127.0.0.1:1"})
		for _, n := range nodes {
			if err := n.Shutdown(); err != nil {
				t.Fatal(err)
			}
		}
	}()
	const tolerance = 2
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline+tolerance {
		if time.Now().After(deadline) {
			var buf bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&buf, 1)
			t.Fatalf("goroutines: %d after Shutdown, baseline %d\n%s", runtime.NumGoroutine(), baseline, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
