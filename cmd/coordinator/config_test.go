package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/secure"
)

func TestServeConfigDP(t *testing.T) {
	write := func(s string) string {
		p := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(p, []byte("dir = \"coord\"\n"+s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := loadServeConfig(write("[dp]\nenabled = true\nnoise = 1.2\nclip = 0.5\nbudget = 8\nadaptive = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := c.policy()
	if err != nil {
		t.Fatal(err)
	}
	if p.DP == nil || p.DP.Noise != 1.2 || p.DP.Clip != 0.5 || p.DP.Epsilon != 8 || !p.DP.Adaptive || p.DP.Delta != 1e-5 {
		t.Fatalf("dp policy %+v", p.DP)
	}
	if c.Adapter.Model != "" || !strings.HasSuffix(c.Store, filepath.Join("coord", "state.db")) {
		t.Fatalf("paths: %+v", c)
	}
	for want, cfg := range map[string]string{
		"noise multiplier 0":   "[dp]\nenabled = true\n",
		"delta 2":              "[dp]\nenabled = true\nnoise = 1\ndelta = 2\n",
		"budget epsilon -1":    "[dp]\nenabled = true\nnoise = 1\nbudget = -1\n",
		"unknown keys: dp.z":   "[dp]\nz = 1\n",
		"upload bits 5":        "[train]\nbits = 5\n",
		"rounds.timeout \"x\"": "[rounds]\ntimeout = \"x\"\n",
		"start clients -2":     "[rounds]\nstart_clients = -2\n",
	} {
		c, err := loadServeConfig(write(cfg))
		if err == nil {
			_, _, err = c.policy()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want it to mention %q", cfg, err, want)
		}
	}
	c, _ = loadServeConfig(write("[rounds]\nmin_clients = 2\nstart_clients = 5\n"))
	if p, _, err := c.policy(); err != nil || p.MinClients != 2 || p.StartClients != 5 {
		t.Fatalf("start_clients: %+v %v", p, err)
	}
	c, _ = loadServeConfig(write("[adapter]\nmodel = \"builtin\"\n"))
	if c.Adapter.Model != "builtin" {
		t.Fatalf("model = %q: the built-in name must not become a path", c.Adapter.Model)
	}
}

func TestServeConfigSecureAggregation(t *testing.T) {
	write := func(s string) string {
		p := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(p, []byte("dir = \"coord\"\n[rounds]\ncohort = 4\n"+strings.Replace(s, "[rounds]\n", "", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := loadServeConfig(write("[secure_aggregation]\nenabled = true\nrange = 0.05\nneighbours = 2\nthreshold = 2\nkey_agreement = \"xwing\"\nstage_timeout = \"20s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := c.policy()
	if err != nil {
		t.Fatal(err)
	}
	if s := p.SecAgg; s == nil || s.Range != 0.05 || s.Neighbours != 2 || s.Threshold != 2 || s.KeyAgreement.String() != "X-Wing" || s.StageTimeout != 20*time.Second {
		t.Fatalf("secure aggregation policy %+v", p.SecAgg)
	}
	for want, cfg := range map[string]string{
		"key agreement \"rsa\"":  "[secure_aggregation]\nenabled = true\nkey_agreement = \"rsa\"\n",
		"use fedavg":             "[rounds]\nrule = \"median\"\n[secure_aggregation]\nenabled = true\n",
		"upload bits 32":         "[secure_aggregation]\nenabled = true\n[train]\nbits = 32\n",
		"stage_timeout \"soon\"": "[secure_aggregation]\nenabled = true\nstage_timeout = \"soon\"\n",
		"range -1":               "[secure_aggregation]\nenabled = true\nrange = -1\n",
	} {
		c, err := loadServeConfig(write(cfg))
		if err == nil {
			_, _, err = c.policy()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want it to mention %q", cfg, err, want)
		}
	}
}

// TestServeConfigLease: a client is selectable for the round timeout plus a
// minute after it was last heard from, unless rounds.lease says otherwise.
func TestServeConfigLease(t *testing.T) {
	for cfg, want := range map[string]time.Duration{
		"[rounds]\ntimeout = \"2m\"\n":                  3 * time.Minute,
		"[rounds]\ntimeout = \"2m\"\nlease = \"30s\"\n": 30 * time.Second,
		"[rounds]\ntimeout = \"2m\"\nlease = \"0s\"\n":  0,
	} {
		p := filepath.Join(t.TempDir(), "c.toml")
		os.WriteFile(p, []byte("dir = \"coord\"\n"+cfg), 0o644)
		c, err := loadServeConfig(p)
		if err != nil {
			t.Fatal(err)
		}
		pol, _, err := c.policy()
		if err != nil || pol.Lease != want {
			t.Errorf("%q: lease %v, %v; want %v", cfg, pol.Lease, err, want)
		}
	}
	for _, bad := range []string{"soon", "10s"} {
		p := filepath.Join(t.TempDir(), "c.toml")
		os.WriteFile(p, []byte("dir = \"coord\"\n[rounds]\ntimeout = \"2m\"\nlease = \""+bad+"\"\n"), 0o644)
		if c, err := loadServeConfig(p); err == nil {
			if _, _, err := c.policy(); err == nil || !strings.Contains(err.Error(), "rounds.lease") {
				t.Errorf("lease %q: %v", bad, err)
			}
		}
	}
}

func TestServeConfigMaxInFlight(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.toml")
	os.WriteFile(p, []byte("dir = \"coord\"\nmax_inflight_mb = 128\n"), 0o644)
	if c, err := loadServeConfig(p); err != nil || c.MaxInFlightMB != 128 {
		t.Fatalf("max_inflight_mb = 128: %d, %v", c.MaxInFlightMB, err)
	}
	for _, bad := range []string{"-1", "2000000"} {
		os.WriteFile(p, []byte("dir = \"coord\"\nmax_inflight_mb = "+bad+"\n"), 0o644)
		if _, err := loadServeConfig(p); err == nil || !strings.Contains(err.Error(), "max_inflight_mb") {
			t.Errorf("max_inflight_mb = %s: %v", bad, err)
		}
	}
}

// TestServeConfigRetentionAndNormBound: keep_uploads, keep_globals and
// rounds.max_update_norm reach the server, and impossible values are
// refused naming the key.
func TestServeConfigRetentionAndNormBound(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	write := func(body string) { os.WriteFile(p, []byte("dir = \"coord\"\n"+body), 0o644) }
	write("keep_uploads = 1000\nkeep_globals = 1000\n[rounds]\nmax_update_norm = 2.5\n")
	c, err := loadServeConfig(p)
	if err != nil || c.KeepUploads != 1000 || c.KeepGlobals != 1000 {
		t.Fatalf("keep_uploads/keep_globals: %+v, %v", c, err)
	}
	if pol, _, err := c.policy(); err != nil || pol.MaxUpdateNorm != 2.5 {
		t.Fatalf("max_update_norm: %v, %v", pol.MaxUpdateNorm, err)
	}
	for _, bad := range []string{"keep_uploads = -1\n", "keep_globals = 1\n"} {
		write(bad)
		if _, err := loadServeConfig(p); err == nil || !strings.Contains(err.Error(), "keep_") {
			t.Errorf("%s: %v", strings.TrimSpace(bad), err)
		}
	}
	for _, bad := range []string{"-1", "inf", "nan"} {
		write("[rounds]\nmax_update_norm = " + bad + "\n")
		c, err := loadServeConfig(p)
		if err == nil {
			_, _, err = c.policy()
		}
		if err == nil || !strings.Contains(err.Error(), "max update norm") {
			t.Errorf("max_update_norm = %s: %v", bad, err)
		}
	}
	write("[rounds]\nmax_update_norm = 1\n[secure_aggregation]\nenabled = true\n")
	if c, err := loadServeConfig(p); err != nil {
		t.Fatal(err)
	} else if _, _, err := c.policy(); err == nil || !strings.Contains(err.Error(), "secure aggregation hides") {
		t.Errorf("max_update_norm with secure aggregation: %v", err)
	}
}

// TestServeConfigSamplingAccountant: rounds.sampling and dp.accountant
// reach the policy; the PLD with fixed cohorts is refused naming both.
func TestServeConfigSamplingAccountant(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.toml")
	os.WriteFile(p, []byte("dir = \"coord\"\n[rounds]\nsampling = \"poisson\"\nfraction = 0.2\n[dp]\nenabled = true\nnoise = 1\naccountant = \"pld\"\n"), 0o644)
	c, err := loadServeConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	pol, _, err := c.policy()
	if err != nil || pol.Sampling != fed.SamplingPoisson || pol.DP.Accountant != fed.AccountantPLD {
		t.Fatalf("policy %+v, %v", pol, err)
	}
	os.WriteFile(p, []byte("dir = \"coord\"\n[dp]\nenabled = true\nnoise = 1\naccountant = \"pld\"\n"), 0o644)
	if c, err = loadServeConfig(p); err == nil {
		_, _, err = c.policy()
	}
	if err == nil || !strings.Contains(err.Error(), "pld covers Poisson sampling") {
		t.Errorf("pld with fixed cohorts: %v", err)
	}
}

// TestMetricsTLS: enroll --operator issues an operator certificate (a plain
// enroll does not), and with metrics_tls, /metrics answers an operator's PEM files
// (enroll --operator --pem-dir) over real TLS on loopback, refuses an
// enrolled client with 403, and a caller without a certificate at the
// handshake.
func TestMetricsTLS(t *testing.T) {
	dir := t.TempDir()
	coord := filepath.Join(dir, "coord")
	if err := secure.InitDir(coord, secure.InitOptions{Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	material, err := secure.LoadDir(coord)
	if err != nil {
		t.Fatal(err)
	}
	grpcTLS, err := material.ServerTLS()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(operatorOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "kronfed_rounds_total 3\n")
	})))
	srv.TLS = metricsTLS(grpcTLS)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	url := "https://" + srv.Listener.Addr().String() + "/metrics"

	get := func(pemDir string) (int, error) {
		ca, _ := os.ReadFile(filepath.Join(pemDir, "ca.pem"))
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		conf := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13}
		if pair, err := tls.LoadX509KeyPair(filepath.Join(pemDir, "cert.pem"), filepath.Join(pemDir, "key.pem")); err == nil {
			conf.Certificates = []tls.Certificate{pair}
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 10 * time.Second}
		resp, err := c.Get(url)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	for name, args := range map[string][]string{"ops": {"--operator"}, "alice": nil} {
		pemDir := filepath.Join(dir, name+"-pem")
		if err := runEnroll(append([]string{"--dir", coord, "--name", name, "--out", filepath.Join(dir, name+".bundle"), "--pem-dir", pemDir}, args...), io.Discard); err != nil {
			t.Fatal(err)
		}
		b, err := secure.ReadBundle(filepath.Join(dir, name+".bundle"))
		if err != nil {
			t.Fatal(err)
		}
		if cert, err := b.Certificate(); err != nil || secure.IsOperator(cert) != (args != nil) {
			t.Fatalf("%s: operator certificate %v, %v; want %v", name, secure.IsOperator(cert), err, args != nil)
		}
		if fi, err := os.Stat(filepath.Join(pemDir, "key.pem")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s key.pem: %v %v", name, fi.Mode(), err)
		}
		want := http.StatusForbidden
		if args != nil {
			want = http.StatusOK
		}
		if code, err := get(pemDir); err != nil || code != want {
			t.Errorf("%s scraping: %d %v, want %d", name, code, err, want)
		}
	}
	noCert := filepath.Join(dir, "nocert")
	os.MkdirAll(noCert, 0o700)
	ca, _ := os.ReadFile(filepath.Join(dir, "ops-pem", "ca.pem"))
	os.WriteFile(filepath.Join(noCert, "ca.pem"), ca, 0o644)
	if code, err := get(noCert); err == nil {
		t.Errorf("scraping without a certificate: %d, want a failed handshake", code)
	}
}
