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
	// progress, when set, adds a bar of the whole work to the line.
	progress *eta
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
		bar := ""
		if s.progress != nil {
			bar = "  " + s.progress.bar(20)
		}
		fmt.Fprintf(s.w, "\r\033[K%s%d/%d clients uploaded (%s)%s", prefix, accepted, cohort, time.Since(s.since).Round(time.Second), bar)
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

// eta follows long work in units (rounds): how many are done, the time
// since the start, and the estimate of the time left at the average pace
// so far.
type eta struct {
	mu          sync.Mutex
	start       time.Time
	total, done int
	now         func() time.Time // time.Now; tests set it
}

func newETA(total int) *eta { return &eta{start: time.Now(), total: total, now: time.Now} }

// step counts one unit done and returns the progress note of the
// per-round line: "[12/96 rounds · 1m02s · ETA 4m10s]".
func (e *eta) step() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.done++
	return e.noteLocked()
}

func (e *eta) noteLocked() string {
	elapsed := e.now().Sub(e.start)
	note := fmt.Sprintf("[%d/%d rounds · %s", e.done, e.total, elapsed.Round(time.Second))
	if e.done > 0 && e.done < e.total {
		left := time.Duration(float64(elapsed) / float64(e.done) * float64(e.total-e.done))
		note += " · ETA " + left.Round(time.Second).String()
	}
	return note + "]"
}

// bar is a text progress bar of width cells with the counts and the ETA,
// for the terminal's status line.
func (e *eta) bar(width int) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	filled := 0
	if e.total > 0 {
		filled = min(width, width*e.done/e.total)
	}
	b := make([]rune, width)
	for i := range b {
		b[i] = '░'
		if i < filled {
			b[i] = '█'
		}
	}
	return string(b) + " " + e.noteLocked()
}
