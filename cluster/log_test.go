package cluster

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordHandler keeps the records it is given.
type recordHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r)
	h.mu.Unlock()
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) records() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]slog.Record(nil), h.recs...)
}

func TestLogWriterLevels(t *testing.T) {
	h := &recordHandler{}
	l := newMemberlistLogger(slog.New(h))
	l.Printf("[DEBUG] memberlist: Stream connection from=127.0.0.1:5000")
	l.Printf("[INFO] memberlist: Suspect node-b has failed, no acks received")
	l.Printf("[WARN] memberlist: Refuting a suspect message (from: x)")
	l.Printf("[ERR] memberlist: Failed to decrypt packet")
	l.Printf("[ERROR] memberlist: Failed to send ping")
	l.Printf("[ERR] Failed to shutdown transport: boom")
	l.Printf("no level at all")
	l.Printf("[WEIRD] memberlist: kept as is")
	l.Printf("two\n[WARN] memberlist: lines")
	want := []struct {
		level slog.Level
		msg   string
	}{
		{slog.LevelDebug, "Stream connection from=127.0.0.1:5000"},
		{slog.LevelInfo, "Suspect node-b has failed, no acks received"},
		{slog.LevelWarn, "Refuting a suspect message (from: x)"},
		{slog.LevelError, "Failed to decrypt packet"},
		{slog.LevelError, "Failed to send ping"},
		{slog.LevelError, "Failed to shutdown transport: boom"},
		{slog.LevelDebug, "no level at all"},
		{slog.LevelDebug, "[WEIRD] memberlist: kept as is"},
		{slog.LevelDebug, "two"},
		{slog.LevelWarn, "lines"},
	}
	got := h.records()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].Level != w.level || got[i].Message != w.msg {
			t.Errorf("record %d: got %v %q, want %v %q", i, got[i].Level, got[i].Message, w.level, w.msg)
		}
	}
}

// TestLogWriterRateLimits: a flood of one kind of error (a stray packet each)
// logs one line per logEvery, the next saying how many were suppressed;
// other kinds and lower levels are not held back.
func TestLogWriterRateLimits(t *testing.T) {
	h := &recordHandler{}
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	l := log.New(newLogWriter(slog.New(h), func() time.Time { return now }), "", 0)
	for i := range 1000 {
		l.Printf("[ERR] memberlist: Failed to decode ping request: msgpack: bad byte %d from=10.0.0.%d:7946", i, i%250)
		l.Printf("[DEBUG] memberlist: Stream connection from=10.0.0.%d:7946", i%250)
	}
	l.Printf("[ERR] memberlist: Received invalid msgType (99) from=10.0.0.1:7946")
	now = now.Add(logEvery)
	l.Printf("[ERR] memberlist: Failed to decode ping request: again from=10.0.0.9:7946")
	var errs []slog.Record
	debug := 0
	for _, r := range h.records() {
		if r.Level == slog.LevelError {
			errs = append(errs, r)
		} else {
			debug++
		}
	}
	if debug != 1000 {
		t.Errorf("%d debug lines, want all 1000", debug)
	}
	if len(errs) != 3 {
		t.Fatalf("%d error lines, want 3 (first ping, msgType, ping after %v)", len(errs), logEvery)
	}
	if !strings.HasPrefix(errs[1].Message, "Received invalid msgType") {
		t.Errorf("second error %q, want the other kind", errs[1].Message)
	}
	suppressed := int64(-1)
	errs[2].Attrs(func(a slog.Attr) bool {
		if a.Key == "suppressed" {
			suppressed = a.Value.Int64()
		}
		return true
	})
	if suppressed != 999 {
		t.Errorf("last error reports %d suppressed, want 999", suppressed)
	}
}
