package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/internal/sharedtest"
)

// TestDataFetch: `client data fetch all` from a mirror (a local HTTP server
// serving the shared data folder) checks and writes every file; bad names
// and a missing subcommand are refused.
func TestDataFetch(t *testing.T) {
	srv := httptest.NewServer(http.FileServer(http.Dir(sharedtest.Path(t, "data"))))
	defer srv.Close()
	var sb strings.Builder
	if err := run([]string{"data", "fetch", "--dir", t.TempDir(), "--mirror", srv.URL, "all"}, &sb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "6 dataset(s) in") || !strings.Contains(sb.String(), "winogrande/dev.jsonl: from "+srv.URL) {
		t.Fatalf("output:\n%s", sb.String())
	}
	for want, args := range map[string][]string{
		"unknown dataset \"mnist\"": {"data", "fetch", "--dir", t.TempDir(), "mnist"},
		"want `data list`":          {"data"},
		"name the datasets":         {"data", "fetch"},
		"flags go first":            {"data", "fetch", "piqa", "--mirror", srv.URL},
	} {
		if err := run(args, &sb); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: %v, want %q", args, err, want)
		}
	}
}
