package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/fed/fedpb"
	"github.com/kronfed/kronfed/secure"
)

// BenchmarkUploadFlood: an enrolled client of a real coordinator process
// opens 250 concurrent uploads of 1 MiB each (the issue-15 attack). The
// coordinator admits uploads by their header, one per client in flight, so
// it reads at most one body at a time; the figure is the coordinator
// process's peak resident memory (VmHWM) before and after the floods.
// Linux only (it reads /proc).
func BenchmarkUploadFlood(b *testing.B) {
	const streams, size = 250, 1 << 20
	f := newFederation(b, 1, "[rounds]\nrounds = 1\ncohort = 1\nquorum = 1\ntimeout = \"10m\"", "")
	p, addr := f.serve(b)
	pid := p.cmd.Process.Pid
	bundle, conn := f.dial(b, 0, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st, err := conn.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := conn.Join(ctx, &fedpb.JoinRequest{Model: st.Model, Adapter: st.Adapter, Examples: 4}); err != nil {
		b.Fatal(err)
	}
	a, err := conn.NextRound(ctx, 0, 30*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	key, err := bundle.Key()
	if err != nil {
		b.Fatal(err)
	}
	body := make([]byte, size) // not a decryptable update: refused once read
	rand.Read(body)
	h := &fedpb.UploadHeader{Round: a.Round, Client: bundle.Name, BaseVersion: a.GlobalVersion, Examples: 4,
		Size: size, Digest: fed.Digest(body), Nonce: make([]byte, fed.NonceSize)}
	if h.Signature, err = secure.SignWithKey(key, fed.UploadSigningBytes(h)); err != nil {
		b.Fatal(err)
	}
	before := vmHWM(b, pid)
	var refusedByHeader, bodiesRead atomic.Int64
	b.ResetTimer()
	for range b.N {
		var wg sync.WaitGroup
		for range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := conn.Upload(ctx, h, body)
				switch status.Code(err) {
				case codes.ResourceExhausted:
					refusedByHeader.Add(1)
				case codes.InvalidArgument:
					bodiesRead.Add(1)
				default:
					b.Errorf("flooding upload: %v", err)
				}
			}()
		}
		wg.Wait()
	}
	b.StopTimer()
	after := vmHWM(b, pid)
	b.ReportMetric(float64(before)/1024, "MiB-peak-RSS-before")
	b.ReportMetric(float64(after)/1024, "MiB-peak-RSS-after")
	b.ReportMetric(float64(refusedByHeader.Load())/float64(b.N), "refused-by-header/op")
	b.ReportMetric(float64(bodiesRead.Load())/float64(b.N), "bodies-read/op")
}

// vmHWM is a process's peak resident set size in KiB (/proc/PID/status).
func vmHWM(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Skipf("peak RSS needs /proc: %v", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmHWM %q: %v", rest, err)
			}
			return kb
		}
	}
	b.Fatal("no VmHWM in /proc status")
	return 0
}
