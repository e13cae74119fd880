package main

import (
	"strings"
	"testing"
	"time"
)

// TestETA: the estimate is the average pace so far times the units left,
// and the bar fills in proportion.
func TestETA(t *testing.T) {
	e := newETA(4)
	base := e.start
	clock := base
	e.now = func() time.Time { return clock }
	clock = base.Add(10 * time.Second)
	if got := e.step(); got != "[1/4 rounds · 10s · ETA 30s]" {
		t.Errorf("after 1 of 4 in 10 s: %q", got)
	}
	clock = base.Add(30 * time.Second)
	if got := e.step(); got != "[2/4 rounds · 30s · ETA 30s]" {
		t.Errorf("after 2 of 4 in 30 s: %q", got)
	}
	if got := e.bar(8); !strings.HasPrefix(got, "████░░░░ [2/4 rounds") {
		t.Errorf("bar %q", got)
	}
	e.step()
	clock = base.Add(60 * time.Second)
	if got := e.step(); got != "[4/4 rounds · 1m0s]" {
		t.Errorf("done: %q", got)
	}
}
