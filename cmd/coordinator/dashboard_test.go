package main

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// chromium finds a headless-capable Chromium, or skips (failing in CI,
// where .ci/run installs Debian's chromium).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no chromium in CI (.ci/run installs Debian's chromium)")
	}
	t.Skip("no chromium (Debian: apt-get install chromium): skipped")
	return ""
}

// TestDashboardInChromium loads the live dashboard in a real headless
// Chromium against a running federation: once a round is published, the
// page's DOM (after its JavaScript polled the state) shows that round as
// published and the three members; a screenshot is written beside the
// test's files. On a plain-HTTP, non-loopback listener the dashboard
// answers 403 with the reason.
func TestDashboardInChromium(t *testing.T) {
	browser := chromium(t)
	f := newFederation(t, 3, `[rounds]
rounds = 2
cohort = 3
quorum = 3
timeout = "60s"
seed = 5`, "")
	coord, addr := f.serve(t, "--metrics", "127.0.0.1:0", "--linger", "30s")
	url := coord.waitFor(t, `dashboard on (http://\S+)`, 10*time.Second)[1]
	var clients []*proc
	for i := range 3 {
		clients = append(clients, f.join(t, i, addr))
	}
	coord.waitFor(t, `aggregated round=2`, 120*time.Second)
	for _, c := range clients {
		if err := c.wait(t, 60*time.Second); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		base := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--user-data-dir=" + filepath.Join(dir, "profile"),
			"--virtual-time-budget=5000"}
		out, err := exec.Command(browser, append(base, args...)...).Output()
		if err != nil {
			t.Fatalf("chromium %v: %v", args, err)
		}
		return string(out)
	}
	dom := run("--dump-dom", url)
	for _, want := range []string{`data-round="1" data-outcome="published"`, `data-round="2" data-outcome="published"`,
		"<td>c0</td>", "<td>c1</td>", "<td>c2</td>", "kronfed coordinator coordinator"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the dashboard's DOM lacks %s:\n%s", want, dom)
		}
	}
	if !strings.Contains(dom, `<div id="error"></div>`) {
		t.Errorf("the page could not poll its state:\n%s", dom)
	}
	shot := filepath.Join(dir, "dashboard.png")
	run("--screenshot="+shot, "--window-size=1200,1000", url)
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot: %v", err)
	}
	t.Logf("screenshot: %s", shot)
	if os.Getenv("KRONFED_KEEP_SCREENSHOT") != "" {
		b, _ := os.ReadFile(shot)
		os.WriteFile(os.Getenv("KRONFED_KEEP_SCREENSHOT"), b, 0o644)
	}
}

// TestDashboardAccess: the dashboard handler refuses, with the reason, when
// its listener is neither loopback nor TLS with the operator identity.
func TestDashboardAccess(t *testing.T) {
	h := dashboardHandler(nil, false)
	for _, path := range []string{"/dashboard/", "/dashboard/state"} {
		rec := &recorder{header: http.Header{}}
		req, _ := http.NewRequest("GET", path, nil)
		h.ServeHTTP(rec, req)
		if rec.code != http.StatusForbidden || !strings.Contains(rec.body.String(), "metrics_tls") {
			t.Errorf("%s: %d %q", path, rec.code, rec.body.String())
		}
	}
}

type recorder struct {
	header http.Header
	code   int
	body   strings.Builder
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(code int)        { r.code = code }
