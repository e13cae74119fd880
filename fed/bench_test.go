package fed

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/secure"
	"github.com/kronfed/kronfed/store"
	"github.com/kronfed/kronfed/train"
)

// countingConn counts the bytes a client writes to its TCP connection:
// TLS records, HTTP/2 and gRPC framing included — the real wire cost.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}

// distilBERTKron is a Kron-LoRA (r = 8) on every linear of DistilBERT's
// architecture, with random factors.
func distilBERTKron(b testing.TB) *adapter.Set {
	cfg := train.DistilBERTConfig()
	targets := cfg.Targets()
	ac := adapter.DefaultConfig(adapter.KindKron).Resolve(cfg.Hidden)
	rng := rand.New(rand.NewPCG(3, 4))
	set, err := adapter.NewSet(ac, "distilbert-base-uncased", targets, rng)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range set.Params() {
		for i := range p.Data {
			p.Data[i] = float32(rng.NormFloat64() * 0.02)
		}
	}
	return set
}

// BenchmarkRound100Clients runs rounds of 100 concurrent gRPC clients over
// TLS on loopback with instant training, on DistilBERT-sized Kron-LoRA
// factors, and reports per round: round wall time (all overhead, since
// training takes no time), aggregation time, and wire bytes per client
// against the quantized payload.
func BenchmarkRound100Clients(b *testing.B) {
	for _, bits := range []int{8, 4} {
		b.Run(fmt.Sprintf("bits=%d", bits), func(b *testing.B) { benchRounds(b, 100, bits) })
	}
}

func benchRounds(b *testing.B, n, bits int) {
	dir := filepath.Join(b.TempDir(), "coord")
	if err := secure.InitDir(dir, secure.InitOptions{Now: time.Now()}); err != nil {
		b.Fatal(err)
	}
	material, err := secure.LoadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(filepath.Join(b.TempDir(), "state.db"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	initial := distilBERTKron(b)
	p := Policy{Rounds: b.N, CohortSize: n, RoundTimeout: 5 * time.Minute, Seed: 1,
		Train: &fedpb.RoundConfig{LocalEpochs: 1, BatchSize: 1, LearningRate: 1e-3, Bits: uint32(bits), Seed: 1}}
	met := NewMetrics(nil)
	srv, err := NewServer(ServerConfig{Policy: p, Rule: Rule{Name: "fedavg"}, Store: st, Initial: initial,
		Identity: material.Identity, Signer: material.Signer, TickEvery: 10 * time.Millisecond, Metrics: met})
	if err != nil {
		b.Fatal(err)
	}
	tlsConf, _ := material.ServerTLS()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := NewGRPCServer(srv, tlsConf)
	go gs.Serve(lis)
	defer gs.Stop()

	var wire atomic.Int64
	var payload atomic.Int64
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var clients []*Client
	for i := range n {
		name := fmt.Sprintf("c%03d", i)
		bd, _ := material.Enroll(name, time.Hour, time.Now())
		tc, _ := bd.ClientTLS("127.0.0.1")
		conn, err := DialGRPC(lis.Addr().String(), tc, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return countingConn{c, &wire}, nil
		}))
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		key, _ := bd.Key()
		rc, _ := bd.CoordinatorRecipient()
		v, _ := bd.CoordinatorVerifier()
		c, err := NewClient(ClientConfig{Name: name, Conn: conn, Trainer: &shiftTrainer{Shift: 0.001 * float32(i%7), Examples: 10},
			Model: initial.BaseModel, Adapter: initial.Config.String(), Examples: 10, Key: key, Recipient: rc, Verifier: v,
			Rounds: b.N, PollWait: time.Second,
			OnRound: func(r RoundReport) { mu.Lock(); payload.Add(int64(r.PayloadBytes)); mu.Unlock() }})
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
	}
	// Join everyone and let the connections settle before timing.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, c := range clients {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- c.Run(ctx) }()
	}
	b.ResetTimer()
	start := time.Now()
	wire.Store(0)
	if err := srv.Run(ctx); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	res := srv.Status().Results
	var agg float64
	for _, r := range res {
		agg += r.AggregateSeconds
	}
	rounds := float64(len(res))
	b.ReportMetric(elapsed.Seconds()/rounds, "s/round")
	b.ReportMetric(agg/rounds, "aggregate-s/round")
	b.ReportMetric(float64(wire.Load())/rounds/float64(n), "wire-B/client-round")
	b.ReportMetric(float64(payload.Load())/rounds/float64(n), "payload-B/client-round")
	b.ReportMetric(float64(RawBytes(initial)), "float32-B")
	// Mean time from an upload's last byte to its durable receipt
	// (verify, decrypt, decode, fsync'd commit, and waiting for the lock
	// behind other uploads).
	var h dto.Metric
	if err := met.UploadSeconds.Write(&h); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(1000*h.GetHistogram().GetSampleSum()/float64(h.GetHistogram().GetSampleCount()), "upload-latency-ms")
}
