package main

import (
	_ "embed"
	"net/http"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/kronfed/kronfed/fed"
)

// The live dashboard: one page (HTML and a little JS, no external
// resources) served on the metrics listener at /dashboard/, polling
// /dashboard/state — the operator's full status (round and phase with the
// deadline, cohort and uploads as they arrive, members with liveness and
// devices, every round's loss, accuracy, ε and bytes) — once a second.
// It shows who takes part, so it needs what the full status needs: the
// operator identity over metrics_tls, or a loopback address.

//go:embed dashboard/index.html
var dashboardPage []byte

// dashboardHandler serves the page and its state. allowed is false on a
// plain-HTTP listener that is not loopback: every request then gets 403
// with the reason.
func dashboardHandler(srv *fed.Server, allowed bool) http.Handler {
	mux := http.NewServeMux()
	guard := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !allowed {
				http.Error(w, "the dashboard shows every member and upload: serve metrics with metrics_tls = true (operator certificate) or on a loopback address", http.StatusForbidden)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("/dashboard/", guard(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/dashboard/" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		w.Write(dashboardPage)
	}))
	mux.HandleFunc("/dashboard/state", guard(func(w http.ResponseWriter, r *http.Request) {
		b, err := protojson.Marshal(srv.Status())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b)
	}))
	return mux
}
