package cluster

import (
	"context"
	"log/slog"
	"sync"
	"testing"
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
