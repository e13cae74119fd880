package fed

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/secure"
	"github.com/kronfed/kronfed/secure/secagg"
	"github.com/kronfed/kronfed/store"
)

// grpcFed is a coordinator served over real TLS on loopback, with keys
// made the way `coordinator init` makes them.
type grpcFed struct {
	material *secure.Coordinator
	srv      *Server
	addr     string
	initial  *testFed
}

func newGRPCFed(t *testing.T, p Policy, dense int) *grpcFed {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "coord")
	if err := secure.InitDir(dir, secure.InitOptions{Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	material, err := secure.LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := NewServer(ServerConfig{Policy: p, Rule: Rule{Name: "fedavg"}, Store: st, Initial: testSet(t, dense),
		Identity: material.Identity, Signer: material.Signer, TickEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tlsConf, err := material.ServerTLS()
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := NewGRPCServer(srv, tlsConf)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return &grpcFed{material: material, srv: srv, addr: lis.Addr().String()}
}

func (g *grpcFed) dial(t *testing.T, name string) (*GRPCConn, *secure.Bundle) {
	t.Helper()
	b, err := g.material.Enroll(name, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tlsConf, err := b.ClientTLS("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := DialGRPC(g.addr, tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, b
}

func (g *grpcFed) client(t *testing.T, name string, shift float32, rounds int) *Client {
	t.Helper()
	conn, b := g.dial(t, name)
	key, err := b.Key()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := b.CoordinatorRecipient()
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.CoordinatorVerifier()
	if err != nil {
		t.Fatal(err)
	}
	set, _ := g.srv.GlobalAdapter()
	c, err := NewClient(ClientConfig{Name: name, Conn: conn, Trainer: &shiftTrainer{Shift: shift, Examples: 8},
		Model: set.BaseModel, Adapter: set.Config.String(), Examples: 8, Key: key, Recipient: rc, Verifier: v,
		Rounds: rounds, PollWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func caPool(m *secure.Coordinator) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(m.Authority.Cert)
	return p
}

// TestGRPCRounds runs two clients for two rounds over real TLS on loopback,
// with adapters larger than one chunk in both directions.
func TestGRPCRounds(t *testing.T) {
	p := testPolicy()
	p.CohortSize, p.Quorum = 2, 2
	g := newGRPCFed(t, p, 2*ChunkSize/4+1000) // the dense head alone spans 3 chunks
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs := []*Client{g.client(t, "alice", 0.01, 2), g.client(t, "bob", 0.03, 2)}
	errs := make(chan error, 2)
	for _, c := range cs {
		go func() { errs <- c.Run(ctx) }()
	}
	if err := g.srv.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for range cs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	st := g.srv.Status()
	if st.GlobalVersion != 3 || len(st.Results) != 2 || st.Results[1].WireBytes < 2*ChunkSize {
		t.Fatalf("status after 2 rounds: %v", st)
	}

	// Health checking and the coordinator's status over the same TLS port.
	conn, _ := g.dial(t, "operator")
	h, err := healthpb.NewHealthClient(conn.cc).Check(ctx, &healthpb.HealthCheckRequest{Service: ServiceName})
	if err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	if s, err := conn.Status(ctx); err != nil || s.GlobalVersion != 3 {
		t.Fatalf("status rpc: %v %v", s, err)
	}
}

// TestGRPCRefusals: callers without a certificate of the federation's CA,
// malformed streams and tampered uploads get precise statuses.
func TestGRPCRefusals(t *testing.T) {
	p := testPolicy()
	p.CohortSize, p.Quorum, p.Rounds = 1, 1, 1
	g := newGRPCFed(t, p, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// No client certificate: the TLS handshake fails.
	noCert, err := DialGRPC(g.addr, &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: caPool(g.material), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer noCert.Close()
	noCertConf := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: caPool(g.material), ServerName: "127.0.0.1"}
	if _, err := noCert.Status(ctx); status.Code(err) != codes.Unavailable {
		t.Fatalf("call without a client certificate: %v", err)
	}
	if err := ProbeTLS(ctx, g.addr, noCertConf); !errors.Is(err, ErrCertificateRefused) {
		t.Fatalf("probe without a client certificate: %v", err)
	}
	// A certificate from another CA: refused too.
	otherDir := filepath.Join(t.TempDir(), "other")
	if err := secure.InitDir(otherDir, secure.InitOptions{Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	other, _ := secure.LoadDir(otherDir)
	ob, _ := other.Enroll("alice", time.Hour, time.Now())
	otls, _ := ob.ClientTLS("127.0.0.1")
	otls.RootCAs = caPool(g.material) // trust the real server, present a foreign client cert
	foreign, _ := DialGRPC(g.addr, otls)
	defer foreign.Close()
	if _, err := foreign.Status(ctx); status.Code(err) != codes.Unavailable {
		t.Fatalf("call with a foreign certificate: %v", err)
	}
	if err := ProbeTLS(ctx, g.addr, otls); !errors.Is(err, ErrCertificateRefused) {
		t.Fatalf("probe with a foreign certificate: %v", err)
	}
	good, _ := g.material.Enroll("probe", time.Hour, time.Now())
	gtls, _ := good.ClientTLS("127.0.0.1")
	if err := ProbeTLS(ctx, g.addr, gtls); err != nil {
		t.Fatalf("probe with an enrolled certificate: %v", err)
	}

	conn, _ := g.dial(t, "alice")
	set, _ := g.srv.GlobalAdapter()
	if _, err := conn.Join(ctx, &fedpb.JoinRequest{Model: set.BaseModel, Adapter: set.Config.String(), Examples: 4}); err != nil {
		t.Fatal(err)
	}
	// Who sees what: a client's status shows only its own part; an
	// operator's (enroll --operator) shows every member; an operator does
	// not train.
	bob, _ := g.dial(t, "bob")
	if _, err := bob.Join(ctx, &fedpb.JoinRequest{Model: set.BaseModel, Adapter: set.Config.String(), Examples: 4}); err != nil {
		t.Fatal(err)
	}
	members := func(st *fedpb.StatusResponse) (names []string) {
		for _, m := range st.Members {
			names = append(names, m.Name)
		}
		return names
	}
	if st, err := conn.Status(ctx); err != nil || !slices.Equal(members(st), []string{"alice"}) {
		t.Fatalf("alice's status: members %v, %v; want only alice", members(st), err)
	}
	opb, err := g.material.EnrollOperator("ops", time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	optls, _ := opb.ClientTLS("127.0.0.1")
	ops, err := DialGRPC(g.addr, optls)
	if err != nil {
		t.Fatal(err)
	}
	defer ops.Close()
	if st, err := ops.Status(ctx); err != nil || !slices.Equal(members(st), []string{"alice", "bob"}) {
		t.Fatalf("operator's status: members %v, %v; want alice and bob", members(st), err)
	}
	if _, err := ops.Join(ctx, &fedpb.JoinRequest{Model: set.BaseModel, Adapter: set.Config.String(), Examples: 4}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("operator joining: %v, want PermissionDenied", err)
	}

	// Malformed streams.
	raw := fedpb.NewCoordinatorClient(conn.cc)
	sendRaw := func(msgs ...*fedpb.UploadChunk) error {
		st, err := raw.Upload(ctx)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			if err := st.Send(m); err != nil {
				break
			}
		}
		_, err = st.CloseAndRecv()
		return err
	}
	data := func(b []byte) *fedpb.UploadChunk { return &fedpb.UploadChunk{Part: &fedpb.UploadChunk_Data{Data: b}} }
	hdr := func(h *fedpb.UploadHeader) *fedpb.UploadChunk {
		return &fedpb.UploadChunk{Part: &fedpb.UploadChunk_Header{Header: h}}
	}
	for name, c := range map[string]struct {
		msgs []*fedpb.UploadChunk
		code codes.Code
	}{
		"empty":      {nil, codes.InvalidArgument},
		"data first": {[]*fedpb.UploadChunk{data([]byte{1})}, codes.InvalidArgument},
		"oversized":  {[]*fedpb.UploadChunk{hdr(&fedpb.UploadHeader{Size: 1 << 40})}, codes.ResourceExhausted},
		// A header that fails its checks is refused before any body is read.
		"anonymous header": {[]*fedpb.UploadChunk{hdr(&fedpb.UploadHeader{Size: 10}), data([]byte{1, 2})}, codes.PermissionDenied},
	} {
		if err := sendRaw(c.msgs...); status.Code(err) != c.code {
			t.Errorf("%s stream: %v, want %v", name, err, c.code)
		}
	}

	// A real upload, tampered in transit, then sent intact.
	g.srv.mu.Lock()
	g.srv.step(func() []Effect { return g.srv.m.Tick(time.Now()) })
	g.srv.mu.Unlock()
	c := g.client(t, "alice", 0.01, 1)
	a, err := conn.NextRound(ctx, 0, time.Second)
	if err != nil || a.Round != 1 {
		t.Fatalf("assignment: %v %v", a, err)
	}
	file, _, err := conn.Download(ctx, a.GlobalVersion)
	if err != nil {
		t.Fatal(err)
	}
	c.global, _, _ = DecodeAdapter(file)
	c.version = a.GlobalVersion
	if ev := c.train(ctx, a); !isTrained(ev) {
		t.Fatalf("train: %#v", ev)
	}
	up := c.prepared
	conn = c.cfg.Conn.(*GRPCConn) // the connection whose certificate key signed the upload
	raw = fedpb.NewCoordinatorClient(conn.cc)
	// Streams whose admitted header and body disagree.
	for name, msgs := range map[string][]*fedpb.UploadChunk{
		"truncated":     {hdr(up.header), data(up.ct[:len(up.ct)/2])},
		"overlong":      {hdr(up.header), data(up.ct), data([]byte{1})},
		"second header": {hdr(up.header), hdr(up.header)},
	} {
		if err := sendRaw(msgs...); status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s stream: %v, want InvalidArgument", name, err)
		}
	}
	if now, _ := g.srv.InFlight(); now != 0 {
		t.Fatalf("%d upload bytes still in flight after the refused streams", now)
	}
	// One upload in flight per client: a second stream is refused by its
	// header while the first is still sending its body.
	slowCtx, stopSlow := context.WithCancel(ctx)
	slow, err := raw.Upload(slowCtx)
	if err != nil {
		t.Fatal(err)
	}
	if err := slow.Send(hdr(up.header)); err != nil {
		t.Fatal(err)
	}
	for now, _ := g.srv.InFlight(); now != int64(up.header.Size); now, _ = g.srv.InFlight() {
		if ctx.Err() != nil {
			t.Fatalf("slow upload never admitted: %d bytes in flight", now)
		}
		time.Sleep(time.Millisecond)
	}
	// A flood of 50 concurrent streams from the same client: every one is
	// refused by its header, and the bytes in flight never pass one upload.
	flood := make(chan error, 50)
	for range cap(flood) {
		go func() { _, err := conn.Upload(ctx, up.header, up.ct); flood <- err }()
	}
	for range cap(flood) {
		if err := <-flood; status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("flooding upload while one is in flight: %v, want ResourceExhausted", err)
		}
	}
	if _, peak := g.srv.InFlight(); peak != int64(up.header.Size) {
		t.Fatalf("peak in flight %d bytes under a flood, want one upload's %d", peak, up.header.Size)
	}
	stopSlow()
	for now, peak := g.srv.InFlight(); now != 0; now, peak = g.srv.InFlight() {
		if ctx.Err() != nil || peak != int64(up.header.Size) {
			t.Fatalf("abandoned upload not released: %d bytes in flight, peak %d", now, peak)
		}
		time.Sleep(time.Millisecond)
	}
	bad := append([]byte(nil), up.ct...)
	bad[len(bad)-1] ^= 0x80
	if _, err := conn.Upload(ctx, up.header, bad); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("tampered upload: %v", err)
	}
	replay := proto.Clone(up.header).(*fedpb.UploadHeader)
	replay.Round = 7
	if _, err := conn.Upload(ctx, replay, up.ct); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("upload for another round: %v", err)
	}
	if _, err := conn.Upload(ctx, up.header, up.ct); err != nil {
		t.Fatalf("intact upload: %v", err)
	}
}

// TestGRPCSecAggRound runs a secure-aggregation round with X-Wing key
// agreement over real TLS on loopback: every stage crosses gRPC with the
// clients' certificate keys, and the published adapter is the mean of the
// three clients' known updates.
func TestGRPCSecAggRound(t *testing.T) {
	p := testPolicy()
	p.Rounds, p.CohortSize, p.Quorum = 1, 3, 3
	p.SecAgg = &SecAggPolicy{Range: 0.1, KeyAgreement: secagg.XWing}
	g := newGRPCFed(t, p, 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	initial, _ := g.srv.GlobalAdapter()
	shifts := []float32{0.01, 0.03, -0.01}
	errs := make(chan error, len(shifts))
	for i, s := range shifts {
		c := g.client(t, string(rune('a'+i))+"-client", s, 1)
		go func() { errs <- c.Run(ctx) }()
	}
	if err := g.srv.Run(ctx); err != nil {
		t.Fatal(err)
	}
	for range shifts {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	r := g.srv.Status().Results[0]
	if r.Outcome != "published" || r.Survivors != 3 || !strings.Contains(r.SecureAggregation, "X-Wing") {
		t.Fatalf("result %v", r)
	}
	got, _ := g.srv.GlobalAdapter()
	want := float64(shifts[0]+shifts[1]+shifts[2]) / 3 // equal weights (8 examples each)
	init := initial.Params()
	for k, p := range got.Params() {
		for i := range p.Data {
			if d := float64(p.Data[i]-init[k].Data[i]) - want; math.Abs(d) > 0.2/255 {
				t.Fatalf("%s[%d] moved by %v, want %v", p.Name, i, p.Data[i]-init[k].Data[i], want)
			}
		}
	}
}

// TestHandshakeErrorClasses: a handshake that fails on a certificate stops
// the client; one cut off by the network while the coordinator restarts
// (the message gRPC gave in a real run) is retried.
func TestHandshakeErrorClasses(t *testing.T) {
	cases := []struct {
		msg   string
		code  codes.Code
		fatal bool
	}{
		{`connection error: desc = "transport: authentication handshake failed: write tcp 127.0.0.1:35996->127.0.0.1:44165: write: connection reset by peer"`, codes.Unavailable, false},
		{`connection error: desc = "transport: authentication handshake failed: EOF"`, codes.Unavailable, false},
		{`connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:44165: connect: connection refused"`, codes.Unavailable, false},
		{`connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"`, codes.Unavailable, true},
		{`connection error: desc = "transport: authentication handshake failed: remote error: tls: bad certificate"`, codes.Unavailable, true},
		{`x509: certificate has expired`, codes.Internal, false}, // not a transport error
	}
	c := &Client{}
	for _, tc := range cases {
		err := status.Error(tc.code, tc.msg)
		if got := IsHandshakeError(err); got != tc.fatal {
			t.Errorf("%q: IsHandshakeError = %v, want %v", tc.msg, got, tc.fatal)
		}
		if tc.code != codes.Unavailable {
			continue
		}
		want := Retry
		if tc.fatal {
			want = Fatal
		}
		if ev, ok := c.failed(ClientUploading, err).(Failed); !ok || ev.Class != want {
			t.Errorf("%q while uploading: %+v, want class %v", tc.msg, ev, want)
		}
	}
}
