package cluster

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"strings"
)

// logWriter is an io.Writer that turns memberlist's log lines
// ("[LEVEL] memberlist: message") into slog records: [DEBUG] becomes
// slog.LevelDebug, [INFO] Info, [WARN] Warn, [ERR]/[ERROR] Error. Lines
// without a recognised level are logged at Debug, unchanged.
type logWriter struct {
	logger *slog.Logger
}

// newMemberlistLogger returns a *log.Logger for memberlist.Config.Logger that
// writes through logger.
func newMemberlistLogger(logger *slog.Logger) *log.Logger {
	return log.New(logWriter{logger: logger}, "", 0)
}

func (w logWriter) Write(p []byte) (int, error) {
	// log.Logger makes one Write per entry; split anyway in case a message
	// carries several lines.
	for line := range bytes.Lines(p) {
		level, msg, ok := parseLogLine(string(line))
		if !ok {
			continue
		}
		ctx := context.Background()
		if w.logger.Enabled(ctx, level) {
			w.logger.Log(ctx, level, msg)
		}
	}
	return len(p), nil
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
