package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/cluster"
	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/fedtrain"
	"github.com/kronfed/kronfed/internal/cli"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/secure"
	"github.com/kronfed/kronfed/task"
	"github.com/kronfed/kronfed/train"
)

// parseShard reads "i/N": this client holds part i (0-based) of N.
func parseShard(s string) (i, n int, err error) {
	a, b, ok := strings.Cut(s, "/")
	if ok {
		if i, err = strconv.Atoi(a); err == nil {
			n, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("--shard %q: want i/N with 0 ≤ i < N", s)
	}
	return i, n, nil
}

func runJoin(args []string, stdout io.Writer) error {
	fs := newFlags("join")
	addr := fs.String("coordinator", "", "coordinator gRPC host:port (default: the address recorded in the bundle)")
	bundlePath := fs.String("bundle", "", "client bundle from `coordinator enroll` (required)")
	modelPath := fs.String("model", "", "base model: a .gguf file or a Hugging Face folder (required)")
	taskName := fs.String("task", "", "task: "+strings.Join(append(task.Names(), task.SyntheticNames()...), ", ")+" (required)")
	dataDir := fs.String("data", defaultDataDir(), "folder holding the datasets")
	shard := fs.String("shard", "0/1", "the part i/N of the task's training split this client holds (IID partition)")
	partSeed := fs.Uint64("partition-seed", 1, "seed of the partition (the same on every client)")
	trainLimit := fs.Int("train-limit", 0, "use only the first N items of this client's shard (0: all)")
	evalLimit := fs.Int("eval-limit", 64, "validation items scored after each round (0: all)")
	maxLen := fs.Int("max-len", 128, "encoders: tokens per (context, choice) pair")
	rounds := fs.Int("rounds", 0, "leave after this many rounds (0: until the federation finishes)")
	gossipSeed := fs.String("gossip-seed", "", "a gossip member's host:port to join the federation's cluster (optional)")
	gossipBind := fs.String("gossip-bind", "127.0.0.1:0", "gossip bind host:port (with --gossip-seed)")
	capability := fs.String("capability", "", "what this client runs on, reported to the coordinator and in its gossip metadata (default: from --device, cpu:THREADS or cuda:GPU-NAME)")
	seed := fs.Uint64("seed", 1, "seed of this client's dropout")
	wait := fs.Duration("wait", 5*time.Minute, "how long to wait for a coordinator that is not up yet (retries with backoff and jitter; 0: try once)")
	ownRank := fs.Int("rank", 0, "train an adapter of this rank instead of the federation's (a coordinator with rule hetero-exact; 0: the federation's)")
	ownDA2 := fs.Int("dA2", 0, "kron: train an adapter of this dA2 instead of the federation's (a coordinator with rule hetero-exact; 0: the federation's)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	outPath := fs.String("out", "", "when the federation ends, write its final global adapter (verified) to this .safetensors file")
	devFlags := addDeviceFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *bundlePath == "" || *modelPath == "" || *taskName == "" {
		return errors.New("join: --bundle, --model and --task are required")
	}
	engine, err := devFlags.open("join")
	if err != nil {
		return err
	}
	defer engine.Close()
	if *capability == "" {
		*capability = capabilityOf(engine)
	}
	if *outPath != "" {
		if st, err := os.Stat(filepath.Dir(*outPath)); err != nil || !st.IsDir() {
			return fmt.Errorf("join: --out %s: its folder does not exist", *outPath)
		}
	}
	shardI, shardN, err := parseShard(*shard)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	log, err := cli.NewLogger(*logFormat, "info")
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	b, err := secure.ReadBundle(*bundlePath)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if *addr == "" {
		if *addr = b.Coordinator; *addr == "" {
			return errors.New("join: --coordinator is required (the bundle records no address)")
		}
	}
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		return fmt.Errorf("join: --coordinator %q: %w", *addr, err)
	}
	splits, err := train.LoadSplits(*taskName, *dataDir, *partSeed)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if splits.Validation == nil || len(splits.Validation.Items) == 0 {
		return fmt.Errorf("join: task %s has no validation split", *taskName)
	}
	parts, err := task.PartitionIID(splits.Train.Items, shardN, *partSeed)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	mine := splits.Train.Subset(parts[shardI])
	trainItems := limit(mine, *trainLimit)
	if len(trainItems) == 0 {
		return fmt.Errorf("join: shard %s of %s's %d training items is empty", *shard, *taskName, len(splits.Train.Items))
	}
	m, err := train.LoadModel(*modelPath)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if _, err := engine.PrepareBase(m); err != nil {
		return fmt.Errorf("join: %s on %s: %w", m.Name, engine.Device(), err)
	}
	releaseFP32(m) // a client only trains and scores
	tlsConf, err := b.ClientTLS(host)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	key, err := b.Key()
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	recipient, err := b.CoordinatorRecipient()
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	verifier, err := b.CoordinatorVerifier()
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	conn, err := fed.DialGRPC(*addr, tlsConf)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	defer conn.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The federation decides the adapter: take its shape (and head, for
	// encoders) from the current global adapter.
	if *wait < 0 {
		return fmt.Errorf("join: --wait %v: want ≥ 0", *wait)
	}
	err = fed.WaitForCoordinator(ctx, *addr, tlsConf, *wait, fed.DefaultBackoff(), func(err error, next, waited time.Duration) {
		fmt.Fprintf(stdout, "coordinator %s not reachable yet (%v); retrying in %s (waited %s of %s)\n", *addr, err,
			next.Round(100*time.Millisecond), waited.Round(time.Second), *wait)
	})
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	digest, err := train.ModelDigest(*modelPath)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	set, err := federationAdapter(ctx, conn, m, digest, int64(len(trainItems)), *capability)
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	// A client of its own shape trains its own adapter and uploads it
	// whole; one of the federation's shape trains the global's in place.
	own := set
	if *ownRank < 0 || *ownDA2 < 0 {
		return fmt.Errorf("join: --rank %d, --dA2 %d: want ≥ 0", *ownRank, *ownDA2)
	}
	if *ownRank > 0 || *ownDA2 > 0 {
		cfg := set.Config
		if *ownRank > 0 {
			cfg.Rank = *ownRank
		}
		if *ownDA2 > 0 {
			if cfg.Kind != adapter.KindKron {
				return fmt.Errorf("join: --dA2 applies to kron adapters; the federation trains %s", cfg.Kind)
			}
			cfg.DA2 = *ownDA2
		}
		if own, err = train.NewAdapterSet(m, cfg, *seed); err != nil {
			return fmt.Errorf("join: an adapter of rank %d, dA2 %d on %s: %w", cfg.Rank, cfg.DA2, m.Name, err)
		}
	}
	learner, err := engine.NewLearner(m, own, *maxLen, rand.New(rand.NewPCG(*seed, 0x64726f70)))
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	defer learner.Close()
	var trainer fed.Trainer = &fedtrain.Trainer{Learner: learner, TrainItems: trainItems, ValItems: limit(splits.Validation, *evalLimit)}
	if own != set {
		trainer = &fedtrain.Shaped{Trainer: *trainer.(*fedtrain.Trainer), Own: own}
		fmt.Fprintf(stdout, "client %s trains its own adapter, %s, uploaded whole (the coordinator needs rule hetero-exact)\n", b.Name, own.Config)
	}
	if *gossipSeed != "" {
		node, err := joinGossip(ctx, b, *gossipBind, *gossipSeed, cluster.Meta{Role: cluster.RoleClient, Model: set.BaseModel,
			Adapter: set.Config.String(), Examples: len(trainItems), Capability: *capability, Version: 1}, log)
		if err != nil {
			return fmt.Errorf("join: gossip: %w", err)
		}
		defer func() {
			lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			node.Leave(lctx)
			cancel()
			node.Shutdown()
		}()
	}
	fmt.Fprintf(stdout, "client %s: %s on %s (%s), %d training items (shard %s of %s), coordinator %s\n",
		b.Name, set.Config, set.BaseModel, digest, len(trainItems), *shard, *taskName, *addr)
	c, err := fed.NewClient(fed.ClientConfig{
		Name: b.Name, Conn: conn, Trainer: trainer,
		Model: set.BaseModel, Adapter: set.Config.String(), ModelDigest: digest, Examples: int64(len(trainItems)), Capability: *capability,
		Key: key, Recipient: recipient, Verifier: verifier, Rounds: *rounds, Logger: log,
		OnRound: func(r fed.RoundReport) {
			fmt.Fprintf(stdout, "round %d: loss %.4f, val acc %.4f, uploaded %d bytes (float32 would be %d: %.1f×), trained %s\n",
				r.Round, r.Stats.Loss, r.Stats.Accuracy, r.WireBytes, r.RawBytes, float64(r.RawBytes)/float64(max(r.WireBytes, 1)),
				r.Train.Round(time.Millisecond))
		},
	})
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if err := c.Run(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			return nil
		}
		return fmt.Errorf("join: %w", err)
	}
	fmt.Fprintf(stdout, "client %s: done after %d rounds\n", b.Name, c.Rounds())
	if *outPath != "" {
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		file, version, err := c.FetchLatest(fctx)
		if err != nil {
			return fmt.Errorf("join: --out: the federation's final adapter: %w", err)
		}
		if err := os.WriteFile(*outPath, file, 0o644); err != nil {
			return fmt.Errorf("join: --out: %w", err)
		}
		fmt.Fprintf(stdout, "client %s: wrote global adapter version %d to %s\n", b.Name, version, *outPath)
	}
	return nil
}

// federationAdapter joins the coordinator with the model's identity and
// downloads the current global adapter, checking it fits the model.
func federationAdapter(ctx context.Context, conn *fed.GRPCConn, m *model.Model, digest string, examples int64, capability string) (*adapter.Set, error) {
	resp, err := conn.Join(ctx, &fedpb.JoinRequest{Model: m.Name, Examples: examples, Capability: capability, ModelDigest: digest})
	if err != nil {
		return nil, err
	}
	file, _, err := conn.Download(ctx, resp.GlobalVersion)
	if err != nil {
		return nil, fmt.Errorf("download global adapter version %d: %w", resp.GlobalVersion, err)
	}
	set, _, err := fed.DecodeAdapter(file)
	if err != nil {
		return nil, fmt.Errorf("global adapter version %d: %w", resp.GlobalVersion, err)
	}
	probe, err := train.NewAdapterSet(m, set.Config, 0)
	if err != nil {
		return nil, fmt.Errorf("the federation's adapter %s does not fit %s: %w", set.Config, m.Name, err)
	}
	if err := probe.SameShape(set); err != nil {
		return nil, fmt.Errorf("the federation's adapter does not fit %s: %w", m.Name, err)
	}
	return set, nil
}

// joinGossip starts a gossip node named after the client's certificate and
// joins the federation's cluster through seed.
func joinGossip(ctx context.Context, b *secure.Bundle, bind, seed string, meta cluster.Meta, log *slog.Logger) (*cluster.Node, error) {
	host, portStr, err := net.SplitHostPort(bind)
	if err != nil {
		return nil, fmt.Errorf("--gossip-bind %q: %w", bind, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("--gossip-bind %q: bad port", bind)
	}
	cc := cluster.DefaultConfig(b.Name)
	cc.BindAddr, cc.BindPort = host, port
	cc.SecretKey, cc.Meta, cc.Logger = b.ClusterKey, meta, log
	node, err := cluster.Create(cc)
	if err != nil {
		return nil, err
	}
	jctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := node.Join(jctx, []string{seed}); err != nil {
		node.Shutdown()
		return nil, err
	}
	return node, nil
}
