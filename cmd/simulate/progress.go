package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// statusLine is the within-round progress: on a terminal one line,
// rewritten in place as clients upload and cleared before the next
// per-round line; anywhere else (a pipe, a file, a test) it writes nothing,
// so logs hold only the per-round lines.
type statusLine struct {
	w     io.Writer
	tty   bool
	mu    sync.Mutex
	shown bool
	since time.Time // the last permanent line
}

func newStatusLine(w io.Writer) *statusLine {
	f, ok := w.(*os.File)
	if !ok {
		return &statusLine{w: w}
	}
	st, err := f.Stat()
	return &statusLine{w: w, tty: err == nil && st.Mode()&os.ModeCharDevice != 0, since: time.Now()}
}

// uploads shows how many of the round's cohort have uploaded so far; off a
// terminal it is nil, so the simulator does not even collect the counts.
func (s *statusLine) uploads(prefix string) func(accepted, cohort int) {
	if !s.tty {
		return nil
	}
	return func(accepted, cohort int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		fmt.Fprintf(s.w, "\r\033[K%s%d/%d clients uploaded (%s)", prefix, accepted, cohort, time.Since(s.since).Round(time.Second))
		s.shown = true
	}
}

// printf clears the status line, then prints a permanent line.
func (s *statusLine) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shown {
		fmt.Fprint(s.w, "\r\033[K")
		s.shown = false
	}
	fmt.Fprintf(s.w, format, args...)
	s.since = time.Now()
}
