package task

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/internal/sharedtest"
)

// TestFetchFromMirror serves the shared data folder over HTTP as a mirror:
// every catalogued file downloads with its pinned size and SHA-256 (so the
// catalog agrees with the files the tests read), and a second fetch finds
// them up to date.
func TestFetchFromMirror(t *testing.T) {
	data := sharedtest.Path(t, "data")
	srv := httptest.NewServer(http.FileServer(http.Dir(data)))
	defer srv.Close()
	dir := t.TempDir()
	var log []string
	opt := FetchOptions{Mirror: srv.URL, Log: func(f string, a ...any) { log = append(log, f) }}
	for _, d := range Catalog {
		if err := Fetch(context.Background(), d, dir, opt); err != nil {
			t.Fatalf("%s: %v", d.Name, err)
		}
		for _, f := range d.Files {
			want, _ := os.ReadFile(filepath.Join(data, d.Name, f.Name))
			got, err := os.ReadFile(filepath.Join(dir, d.Name, f.Name))
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s/%s: %v", d.Name, f.Name, err)
			}
		}
	}
	log = nil
	if err := Fetch(context.Background(), Catalog[0], dir, opt); err != nil || len(log) == 0 || !strings.Contains(strings.Join(log, " "), "up to date") {
		t.Fatalf("second fetch: %v %v", err, log)
	}
	// The fetched folder is a data folder: the loaders read it.
	s, err := Load("piqa", dir)
	if err != nil {
		t.Fatalf("piqa from the fetched folder: %v", err)
	}
	n := 0
	for _, sp := range []*Task{s.Train, s.Validation, s.Test} {
		if sp != nil {
			n += sp.Len()
		}
	}
	if n != 1838 {
		t.Fatalf("piqa from the fetched folder has %d items, want 1838", n)
	}
}

// TestFetchRefusesDamage: a download whose bytes differ is refused naming
// both digests, and nothing — not even a partial file — is left.
func TestFetchRefusesDamage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("not the file"))
	}))
	defer srv.Close()
	dir := t.TempDir()
	d, _ := FindDataset("self-instruct")
	err := Fetch(context.Background(), d, dir, FetchOptions{Mirror: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "nothing was kept") || !strings.Contains(err.Error(), d.Files[0].SHA256) {
		t.Fatalf("damaged download: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "self-instruct")); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
	// Unknown names and files only mirrors serve are refused clearly.
	if _, err := FindDataset("imagenet"); err == nil || !strings.Contains(err.Error(), "known: arc-challenge") {
		t.Errorf("unknown dataset: %v", err)
	}
	arc, _ := FindDataset("arc-easy")
	if err := Fetch(context.Background(), arc, dir, FetchOptions{}); !errors.Is(err, ErrNoSource) || !strings.Contains(err.Error(), "--mirror") {
		t.Errorf("arc-easy without a mirror: %v", err)
	}
	// A server that answers 404 is an error naming the URL.
	gone := httptest.NewServer(http.NotFoundHandler())
	defer gone.Close()
	if err := Fetch(context.Background(), d, dir, FetchOptions{Mirror: gone.URL}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
}

// TestFetchZipMember fetches WinoGrande the published way — members of the
// official release archive — from a local server standing in for the
// archive's host (an archive built here from the shared files).
func TestFetchZipMember(t *testing.T) {
	data := sharedtest.Path(t, "data")
	d, _ := FindDataset("winogrande")
	var archive bytes.Buffer
	zw := zip.NewWriter(&archive)
	for _, f := range d.Files {
		w, _ := zw.Create(f.Member)
		b, err := os.ReadFile(filepath.Join(data, "winogrande", f.Name))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
	}
	zw.Close()
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests++
		w.Write(archive.Bytes())
	}))
	defer srv.Close()
	local, _ := url.Parse(srv.URL)
	client := &http.Client{Transport: rewrite{to: local}}
	dir := t.TempDir()
	if err := Fetch(context.Background(), d, dir, FetchOptions{Client: client}); err != nil {
		t.Fatal(err)
	}
	if requests != 1 {
		t.Errorf("the archive was downloaded %d times for %d members", requests, len(d.Files))
	}
	for _, f := range d.Files {
		if sum, err := fileSHA256(filepath.Join(dir, "winogrande", f.Name)); err != nil || sum != f.SHA256 {
			t.Errorf("%s: %v", f.Name, err)
		}
	}
}

// rewrite sends every request to a local server, keeping the path.
type rewrite struct{ to *url.URL }

func (rw rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r2 := r.Clone(r.Context())
	r2.URL.Scheme, r2.URL.Host, r2.Host = rw.to.Scheme, rw.to.Host, rw.to.Host
	return http.DefaultTransport.RoundTrip(r2)
}
