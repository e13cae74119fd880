package simulate

import (
	"strings"
	"testing"
)

// TestParsePair: the old A:B and A:B:label forms, per-pair schedules, and
// malformed specs refused with what was wrong.
func TestParsePair(t *testing.T) {
	good := map[string]Pair{
		"a:b":         {A: "a", B: "b"},
		"a:b:rel":     {A: "a", B: "b", Label: "rel"},
		"a:b:10:5":    {A: "a", B: "b", RoundsA: 10, RoundsB: 5},
		"a:b:rel:1:2": {A: "a", B: "b", Label: "rel", RoundsA: 1, RoundsB: 2},
	}
	for s, want := range good {
		p, err := ParsePair(s)
		if err != nil || p != want {
			t.Errorf("%q: %+v, %v; want %+v", s, p, err, want)
		}
		if p.Spec() != s {
			t.Errorf("%q: Spec %q", s, p.Spec())
		}
	}
	bad := map[string]string{
		"a":             "want A:B",
		"a:b:c:d:e:f":   "want A:B",
		":b":            "empty field",
		"a:b:10":        "needs both phase lengths",
		"a:b:10:x":      `phase B "x"`,
		"a:b:0:3":       `phase A "0"`,
		"a:b:rel:3:-1":  `phase B "-1"`,
		"a:b:rel:1.5:2": `phase A "1.5"`,
	}
	for s, want := range bad {
		if _, err := ParsePair(s); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to mention %q", s, err, want)
		}
	}
}

// TestSchedule: a pair's own phase lengths win over the experiment's, per
// phase; scaling rounds to the nearest round, at least one.
func TestSchedule(t *testing.T) {
	e := Experiment{RoundsA: 4, RoundsB: 6}
	for _, c := range []struct {
		p    Pair
		a, b int
	}{{Pair{}, 4, 6}, {Pair{RoundsA: 10, RoundsB: 5}, 10, 5}, {Pair{RoundsB: 2}, 4, 2}} {
		if a, b := e.Schedule(c.p); a != c.a || b != c.b {
			t.Errorf("%+v: %d+%d, want %d+%d", c.p, a, b, c.a, c.b)
		}
	}
	for _, c := range []struct {
		n    int
		f    float64
		want int
	}{{10, 1, 10}, {10, 0.1, 1}, {5, 0.1, 1}, {5, 0.3, 2}, {10, 0.25, 3}, {1, 0.01, 1}} {
		if got := ScaleRounds(c.n, c.f); got != c.want {
			t.Errorf("ScaleRounds(%d, %v) = %d, want %d", c.n, c.f, got, c.want)
		}
	}
}

// TestForgettingPerPairSchedule: a pair with its own schedule runs exactly
// those rounds, and the outcome records them.
func TestForgettingPerPairSchedule(t *testing.T) {
	e := tinyExperiment(t, t.TempDir())
	e.Pairs[0].RoundsB = 2
	o, recs, err := e.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].Phase != "A" || recs[1].Phase != "B" || recs[2].Phase != "B" || o[0].RoundsA != 1 || o[0].RoundsB != 2 {
		t.Fatalf("records %+v, outcome %+v", recs, o[0])
	}
}
