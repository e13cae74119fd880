package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// logWriter is an io.Writer that turns memberlist's log lines
// ("[LEVEL] memberlist: message") into slog records: [DEBUG] becomes
// slog.LevelDebug, [INFO] Info, [WARN] Warn, [ERR]/[ERROR] Error. Lines
// without a recognised level are logged at Debug, unchanged.
//
// Warnings and errors are rate-limited per kind of message (its text up to
// the first detail: "Failed to decode ping request", "Received invalid
// msgType"): memberlist logs one ERROR per stray or hostile packet on the
// gossip port, and a flood of them must not flood the log. One line per
// kind per logEvery passes; the next one that passes says how many were
// suppressed in between.
type logWriter struct {
	logger *slog.Logger
	now    func() time.Time
	mu     sync.Mutex
	kinds  map[string]*logKind
}

// logKind is one kind of message's rate-limit state.
type logKind struct {
	last       time.Time
	suppressed int
}

const (
	logEvery    = 10 * time.Second
	maxLogKinds = 256 // the map is reset beyond this, so it cannot grow without bound
)

// newMemberlistLogger returns a *log.Logger for memberlist.Config.Logger that
// writes through logger.
func newMemberlistLogger(logger *slog.Logger) *log.Logger {
	return log.New(newLogWriter(logger, time.Now), "", 0)
}

func newLogWriter(logger *slog.Logger, now func() time.Time) *logWriter {
	return &logWriter{logger: logger, now: now, kinds: map[string]*logKind{}}
}

func (w *logWriter) Write(p []byte) (int, error) {
	// log.Logger makes one Write per entry; split anyway in case a message
	// carries several lines.
	for line := range bytes.Lines(p) {
		level, msg, ok := parseLogLine(string(line))
		if !ok {
			continue
		}
		ctx := context.Background()
		if !w.logger.Enabled(ctx, level) {
			continue
		}
		if level < slog.LevelWarn {
			w.logger.Log(ctx, level, msg)
			continue
		}
		if pass, suppressed := w.admit(messageKind(msg)); pass && suppressed > 0 {
			w.logger.Log(ctx, level, msg, "suppressed", suppressed)
		} else if pass {
			w.logger.Log(ctx, level, msg)
		}
	}
	return len(p), nil
}

// admit reports whether a message of kind is logged now, and how many of
// its kind were suppressed since the last one logged.
func (w *logWriter) admit(kind string) (pass bool, suppressed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	k := w.kinds[kind]
	if k == nil {
		if len(w.kinds) >= maxLogKinds {
			clear(w.kinds)
		}
		w.kinds[kind] = &logKind{last: now}
		return true, 0
	}
	if now.Sub(k.last) < logEvery {
		k.suppressed++
		return false, 0
	}
	suppressed, k.last, k.suppressed = k.suppressed, now, 0
	return true, suppressed
}

// messageKind is a message's text up to its first detail (": ", " (",
// " from=").
func messageKind(msg string) string {
	for _, sep := range []string{": ", " (", " from="} {
		if i := strings.Index(msg, sep); i >= 0 {
			msg = msg[:i]
		}
	}
	return msg
}

// parseLogLine splits "[LEVEL] memberlist: message" into a slog level and the
// message. ok is false for blank lines.
func parseLogLine(line string) (level slog.Level, msg string, ok bool) {
	line = strings.TrimSpace(line)
	if line == "" {
		return 0, "", false
	}
	level = slog.LevelDebug
	if rest, found := strings.CutPrefix(line, "["); found {
		if tag, after, found := strings.Cut(rest, "]"); found {
			known := true
			switch strings.ToUpper(tag) {
			case "TRACE", "DEBUG":
				level = slog.LevelDebug
			case "INFO":
				level = slog.LevelInfo
			case "WARN", "WARNING":
				level = slog.LevelWarn
			case "ERR", "ERROR":
				level = slog.LevelError
			default:
				known = false
			}
			if known {
				line = strings.TrimSpace(after)
			}
		}
	}
	line = strings.TrimPrefix(line, "memberlist: ")
	return level, line, true
}
