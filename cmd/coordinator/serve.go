package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kronfed/kronfed/cluster"
	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/internal/cli"
	"github.com/kronfed/kronfed/secure"
	"github.com/kronfed/kronfed/store"
)

func runServe(args []string, stdout io.Writer) error {
	fs := newFlags("serve")
	configPath := fs.String("config", "", "TOML config (required; see README)")
	listen := fs.String("listen", "", "gRPC host:port (overrides the config's listen; port 0 picks one)")
	metricsAddr := fs.String("metrics", "", "Prometheus host:port (overrides the config's metrics)")
	gossip := fs.String("gossip", "", "memberlist bind host:port (overrides the config's gossip)")
	rounds := fs.Int("rounds", -1, "rounds to publish (overrides the config's rounds.rounds)")
	linger := fs.Duration("linger", 3*time.Second, "after the last round, keep serving this long so clients learn the federation finished")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	newFederation := fs.Bool("new-federation", false, "start a new federation although this folder's earlier one left no state file (its history is gone)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *configPath == "" {
		return errors.New("serve: --config is required")
	}
	log, err := cli.NewLogger(*logFormat, *logLevel)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	cfg, err := loadServeConfig(*configPath)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	for flagVal, field := range map[*string]*string{listen: &cfg.Listen, metricsAddr: &cfg.Metrics, gossip: &cfg.Gossip} {
		if *flagVal != "" {
			*field = *flagVal
		}
	}
	if *rounds >= 0 {
		cfg.Rounds.Rounds = *rounds
	}
	policy, rule, err := cfg.policy()
	if err != nil {
		return fmt.Errorf("serve: %s: %w", *configPath, err)
	}
	material, err := secure.LoadDir(cfg.Dir)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	initial, err := cfg.initialAdapter()
	if err != nil {
		return fmt.Errorf("serve: initial adapter: %w", err)
	}
	if err := checkStateFile(cfg, *newFederation); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	st, err := store.Open(cfg.Store, store.Options{})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer st.Close()
	if err := markStarted(cfg); err != nil {
		return fmt.Errorf("serve: %w", err)
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	digest, err := cfg.Adapter.modelDigest()
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	srv, err := fed.NewServer(fed.ServerConfig{Name: cfg.Name, Policy: policy, Rule: rule, Store: st, Initial: initial, ModelDigest: digest,
		Identity: material.Identity, Signer: material.Signer, Logger: log, Metrics: fed.NewMetrics(reg),
		MaxInFlightBytes: int64(cfg.MaxInFlightMB) << 20, KeepUploads: cfg.KeepUploads, KeepGlobals: cfg.KeepGlobals})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	tlsConf, err := material.ServerTLS()
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("serve: listen %s: %w", cfg.Listen, err)
	}
	gs := fed.NewGRPCServer(srv, tlsConf)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	serveErr := make(chan error, 2)
	go func() { serveErr <- gs.Serve(lis) }()
	fmt.Fprintf(stdout, "coordinator %s listening on %s (model %s, adapter %s, rule %s)\n", cfg.Name, lis.Addr(),
		initial.BaseModel, initial.Config, rule)
	if digest != "" {
		fmt.Fprintf(stdout, "clients must hold the model files %s (%s), checked at join\n", digest, initial.BaseModel)
	}

	var httpSrv *http.Server
	if cfg.Metrics != "" {
		ml, err := net.Listen("tcp", cfg.Metrics)
		if err != nil {
			gs.Stop()
			return fmt.Errorf("serve: metrics listen %s: %w", cfg.Metrics, err)
		}
		mux := http.NewServeMux()
		var metrics http.Handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		scheme := "http"
		if cfg.MetricsTLS {
			metrics, scheme = operatorOnly(metrics), "https"
			ml = tls.NewListener(ml, metricsTLS(tlsConf))
		} else if !isLoopback(ml.Addr()) {
			log.Warn("metrics are served without authentication on a non-loopback address; set metrics_tls = true or bind 127.0.0.1", "addr", ml.Addr().String())
		}
		mux.Handle("/metrics", metrics)
		dash := dashboardHandler(srv, cfg.MetricsTLS || isLoopback(ml.Addr()))
		if cfg.MetricsTLS {
			dash = operatorOnly(dash)
		}
		mux.Handle("/dashboard/", dash)
		// Failed handshakes (callers without a certificate) at debug level:
		// one line each must not flood the log.
		httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
		go func() {
			if err := httpSrv.Serve(ml); err != nil && !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("metrics: %w", err)
			}
		}()
		fmt.Fprintf(stdout, "metrics on %s://%s/metrics\n", scheme, ml.Addr())
		fmt.Fprintf(stdout, "dashboard on %s://%s/dashboard/\n", scheme, ml.Addr())
	}

	var node *cluster.Node
	if cfg.Gossip != "" {
		if node, err = startGossip(ctx, cfg, material, lis.Addr().String(), srv, log); err != nil {
			gs.Stop()
			return fmt.Errorf("serve: gossip: %w", err)
		}
		fmt.Fprintf(stdout, "gossip on %s\n", node.LocalAddr())
	}

	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(ctx) }()
	select {
	case err = <-runErr:
		if err == nil { // all rounds published: let polling clients hear it
			select {
			case <-time.After(*linger):
			case <-ctx.Done():
			}
		}
	case err = <-serveErr:
		stop()
		<-runErr
	}
	if node != nil {
		lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		node.Leave(lctx)
		cancel()
		node.Shutdown()
	}
	stopGracefully(gs, 5*time.Second)
	if httpSrv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		httpSrv.Shutdown(sctx)
		cancel()
	}
	if errors.Is(err, context.Canceled) {
		log.Info("stopped by signal")
		return nil
	}
	return err
}

// stopGracefully lets in-flight calls finish, but not forever: long polls
// would otherwise hold the shutdown for their whole wait.
func stopGracefully(gs interface {
	GracefulStop()
	Stop()
}, limit time.Duration) {
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		gs.Stop()
	}
}

// startGossip joins the coordinator to the federation's gossip cluster and
// feeds member failures to the server.
func startGossip(ctx context.Context, cfg serveConfig, m *secure.Coordinator, grpcAddr string, srv *fed.Server, log *slog.Logger) (*cluster.Node, error) {
	host, portStr, err := net.SplitHostPort(cfg.Gossip)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: %w", cfg.Gossip, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("gossip address %q: bad port", cfg.Gossip)
	}
	cc := cluster.DefaultConfig(cfg.Name)
	cc.BindAddr, cc.BindPort = host, port
	cc.SecretKey = m.ClusterKey
	cc.Logger = log
	cc.Meta = cluster.Meta{Role: cluster.RoleCoordinator, Version: 1}
	// Publish the gRPC address only where it can be dialed: a wildcard
	// listen address ("[::]:7070") means nothing to another host.
	if h, _, err := net.SplitHostPort(grpcAddr); err == nil && !net.ParseIP(h).IsUnspecified() {
		cc.Meta.GRPC = grpcAddr
	}
	node, err := cluster.Create(cc)
	if err != nil {
		return nil, err
	}
	if len(cfg.Seeds) > 0 {
		jctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := node.Join(jctx, cfg.Seeds)
		cancel()
		if err != nil {
			log.Warn("gossip join", "seeds", cfg.Seeds, "err", err)
		}
	}
	go func() {
		for ev := range node.Events() {
			if ev.Kind == cluster.MemberLeave && ev.Member.Meta.Role == cluster.RoleClient {
				srv.MemberDown(ev.Member.Name)
			}
		}
	}()
	return node, nil
}

// startedMarker is written into the coordinator's folder the first time a
// federation starts there: from then on a missing state file is an error
// (restored from a backup, or --new-federation), never a silent restart
// from round 0.
const startedMarker = "federation-started"

// checkStateFile refuses to create a state file where a federation has run
// before, unless newFederation; and refuses newFederation where the state
// file exists (move it away first: nothing is overwritten).
func checkStateFile(cfg serveConfig, newFederation bool) error {
	_, err := os.Stat(cfg.Store)
	exists := err == nil
	marker, merr := os.ReadFile(filepath.Join(cfg.Dir, startedMarker))
	switch {
	case exists && newFederation:
		return fmt.Errorf("--new-federation: the state file %s exists; move it away first (nothing is overwritten)", cfg.Store)
	case !exists && merr == nil && !newFederation:
		return fmt.Errorf("the state file %s is missing, but a federation was started in %s (%s); restore the file from a backup, or pass --new-federation to start over without its history",
			cfg.Store, cfg.Dir, strings.TrimSpace(string(marker)))
	}
	return nil
}

// markStarted records in the coordinator's folder that a federation runs
// on this state file.
func markStarted(cfg serveConfig) error {
	path := filepath.Join(cfg.Dir, startedMarker)
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	return os.WriteFile(path, []byte(fmt.Sprintf("state file %s, first served %s\n", cfg.Store, time.Now().UTC().Format(time.RFC3339))), 0o644)
}

// metricsTLS is the coordinator's server TLS (client certificates of the
// federation's CA required) for HTTP/1.1: the /metrics listener.
func metricsTLS(grpcTLS *tls.Config) *tls.Config {
	c := grpcTLS.Clone()
	c.NextProtos = []string{"http/1.1"}
	return c
}

// operatorOnly serves h to operator certificates (enroll --operator) and
// refuses enrolled clients: metrics name the federation's members.
func operatorOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || !secure.IsOperator(r.TLS.VerifiedChains[0][0]) {
			http.Error(w, "metrics are served to operator certificates only (coordinator enroll --operator)", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// isLoopback reports whether addr is a loopback TCP address.
func isLoopback(addr net.Addr) bool {
	a, ok := addr.(*net.TCPAddr)
	return ok && a.IP.IsLoopback()
}
