package fed

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/kronfed/kronfed/aggregate"
	"github.com/kronfed/kronfed/aggregate/accountant"
)

// TestPrivacyBudgetStopsRounds: ε grows every published round exactly as
// an independent accountant computes it, and the round that would pass the
// budget is never started.
func TestPrivacyBudgetStopsRounds(t *testing.T) {
	p := testPolicy()
	p.Rounds, p.CohortSize, p.Quorum = 0, 2, 2
	p.DP = &DPPolicy{Clip: 1, Noise: 4, Epsilon: 3, Delta: 1e-5}
	var names []string
	for i := range 10 {
		names = append(names, fmt.Sprintf("c%d", i))
	}
	m := newTestMachine(t, p, names...)
	ref, err := accountant.NewAccountant(accountant.WithoutReplacement{Cohort: 2, Population: 10}, accountant.DefaultOrders())
	if err != nil {
		t.Fatal(err)
	}
	prev := 0.0
	for round := uint64(1); ; round++ {
		effects := m.Tick(t0)
		if b, ok := effects[0].(BudgetExhausted); ok {
			if b.Next <= 3 || b.Epsilon > 3 || m.State().Phase != PhaseDone || m.State().Stopped == "" {
				t.Fatalf("stopped at %+v, state %+v", b, m.State())
			}
			// Restarting does not resume a federation stopped by its budget.
			m2, _ := NewCoordinatorMachine(p, m.State())
			for _, c := range names {
				m2.Join(t0, c, 1, "")
			}
			if e := m2.Tick(t0); e != nil {
				t.Fatalf("restart after the budget: %v", e)
			}
			if round < 3 {
				t.Fatalf("only %d rounds under the budget", round-1)
			}
			return
		}
		sr := only[StartRound](t, effects)
		for i, c := range sr.Cohort {
			m.Accept(t0, receipt(header(m, c, byte(i))))
		}
		only[RoundPublished](t, m.Aggregated(round, round+1, 0))
		if err := ref.Compose(4, 0.2, 1); err != nil {
			t.Fatal(err)
		}
		want, _, err := ref.Epsilon(1e-5)
		if err != nil {
			t.Fatal(err)
		}
		got := m.State().Epsilon
		if math.Abs(got-want) > 1e-9*want || got <= prev || got > 3 {
			t.Fatalf("round %d: ε %v, accountant says %v (previous %v)", round, got, want, prev)
		}
		prev = got
	}
}

// TestDPRoundsInMemory: with DP on, the published adapter is the global
// plus the mean of the clipped updates plus noise of the reported size,
// and ε, clip and noise are reported.
func TestDPRoundsInMemory(t *testing.T) {
	p := testPolicy()
	p.Rounds = 1
	p.DP = &DPPolicy{Clip: 10, Noise: 1e-6, Delta: 1e-5, SeededNoise: true, Seed: 4}
	f := newTestFed(t, p, 0)
	defer f.st.Close()
	shifts := []float32{0.01, -0.02, 0.04}
	var clients []*testClient
	for i, s := range shifts {
		clients = append(clients, f.client(t, fmt.Sprintf("c%d", i), s, 10*(i+1), 1))
	}
	serr, cerrs := runAll(t, context.Background(), f.srv, clients...)
	if serr != nil || cerrs[0] != nil || cerrs[1] != nil || cerrs[2] != nil {
		t.Fatalf("%v %v", serr, cerrs)
	}
	st := f.srv.Status()
	r := st.Results[0]
	if !(st.Epsilon > 0) || r.Epsilon != st.Epsilon || r.Clip != 10 || !(r.NoiseStd > 0) || r.Noise == "" {
		t.Fatalf("DP report: status ε %v, result %v", st.Epsilon, r)
	}
	// Unweighted: every client counts once (fixed denominator = cohort of 3).
	mean := float64(shifts[0]+shifts[1]+shifts[2]) / 3
	got, _ := f.srv.GlobalAdapter()
	init := f.initial.Params()
	for k, g := range got.Params() {
		for i := range g.Data {
			if d := float64(g.Data[i]-init[k].Data[i]) - mean; math.Abs(d) > 2*0.04/127+1e-6 {
				t.Fatalf("%s[%d] moved by %v, want the unweighted mean %v", g.Name, i, float64(g.Data[i]-init[k].Data[i]), mean)
			}
		}
	}
}

// TestLocalDPRound: with local DP every client clips and noises its own
// update before upload. The noise is seeded here, so the test rebuilds
// each client's noisy update independently and checks the published
// adapter is their weighted mean (within 8-bit rounding); ε is that of the
// Gaussian mechanism with multiplier z/2 (replace-one), α/(2(z/2)²) at
// every order, without amplification by sampling.
func TestLocalDPRound(t *testing.T) {
	p := testPolicy()
	p.Rounds, p.CohortSize = 1, 2
	p.DP = &DPPolicy{Clip: 0.05, Noise: 2, Delta: 1e-5, SeededNoise: true, Local: true}
	f := newTestFed(t, p, 0)
	defer f.st.Close()
	shifts := []float32{0.01, -0.02, 0.04}
	examples := []int{10, 20, 30}
	var clients []*testClient
	for i, s := range shifts {
		clients = append(clients, f.client(t, fmt.Sprintf("c%d", i), s, examples[i], 1))
	}
	// Cohort of 2 from 3: only the selected clients upload.
	serr, _ := runAll(t, context.Background(), f.srv, clients...)
	if serr != nil {
		t.Fatal(serr)
	}
	st := f.srv.Status()
	r := st.Results[0]
	if r.Outcome != "published" || r.Clip != 0.05 || r.NoiseStd != 0.1 || !strings.HasPrefix(r.Noise, "local") {
		t.Fatalf("result %v", r)
	}
	// The Gaussian mechanism (no sampling amplification), σ = z/2 = 1:
	// RDP(α) = α/2, converted by Balle et al.'s bound and minimized over α
	// by a scan in steps of 1e-5.
	want := math.Inf(1)
	for a := 1.02; a < 20; a += 1e-5 {
		want = math.Min(want, a/2-(math.Log(1e-5)+math.Log(a))/(a-1)+math.Log((a-1)/a))
	}
	if math.Abs(st.Epsilon-want) > 1e-7*want {
		t.Fatalf("ε %v, want the Gaussian mechanism's %v", st.Epsilon, want)
	}
	// Rebuild every selected client's noisy update.
	seed := RoundSeed(p.Train.Seed, 1)
	sum := make([][]float64, len(f.initial.Params()))
	tol, weight := 0.0, 0.0
	for _, name := range r.Clients {
		i := int(name[1] - '0')
		delta := f.initial.Clone()
		for _, q := range delta.Params() {
			for j := range q.Data {
				q.Data[j] = shifts[i]
			}
		}
		h := fnv.New64a()
		h.Write([]byte(name))
		if _, _, err := aggregate.AddLocalNoise(delta, 0.05, 2, aggregate.SeededNoise(seed^h.Sum64())); err != nil {
			t.Fatal(err)
		}
		w := float64(examples[i])
		weight += w
		worst := 0.0
		for k, q := range delta.Params() {
			if sum[k] == nil {
				sum[k] = make([]float64, len(q.Data))
			}
			for j, v := range q.Data {
				sum[k][j] += w * float64(v)
				worst = math.Max(worst, math.Abs(float64(v)))
			}
		}
		tol += w * worst / 127 // one 8-bit step of this client's largest row scale
	}
	got, _ := f.srv.GlobalAdapter()
	init := f.initial.Params()
	for k, q := range got.Params() {
		for j := range q.Data {
			if d := float64(q.Data[j]-init[k].Data[j]) - sum[k][j]/weight; math.Abs(d) > tol/weight+1e-6 {
				t.Fatalf("%s[%d]: moved %v, want the mean noisy update %v (tolerance %v)", q.Name, j, q.Data[j]-init[k].Data[j], sum[k][j]/weight, tol/weight)
			}
		}
	}
}

// TestPrivacyLegacyGridState: a state written before DPRounds (its spent
// Rényi DP on accountant.DefaultOrders) goes on accounting on that grid,
// round after round, and never mixes in the order search; a new state
// keeps runs of rounds and its ε is over all orders, at most the grid's.
func TestPrivacyLegacyGridState(t *testing.T) {
	p := testPolicy()
	p.Rounds, p.CohortSize, p.Quorum = 0, 2, 2
	p.DP = &DPPolicy{Clip: 1, Noise: 2, Delta: 1e-5}
	orders := accountant.DefaultOrders()
	for _, legacy := range []bool{true, false} {
		st := State{GlobalVersion: 1}
		if legacy {
			st.RDP = make([]float64, len(orders))
		}
		m, err := NewCoordinatorMachine(p, st)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{"a", "b", "c", "d"} {
			m.Join(t0, c, 10, "")
		}
		grid, _ := accountant.NewAccountant(accountant.WithoutReplacement{Cohort: 2, Population: 4}, orders)
		for round := uint64(1); round <= 3; round++ {
			sr := only[StartRound](t, m.Tick(t0))
			for i, c := range sr.Cohort {
				m.Accept(t0, receipt(header(m, c, byte(i))))
			}
			only[RoundPublished](t, m.Aggregated(round, round+1, 0))
			grid.Compose(2, 0.5, 1)
		}
		onGrid, _, _ := accountant.EpsilonFromRDP(orders, grid.RDP(), 1e-5)
		got := m.State()
		if legacy {
			poisson := p
			poisson.CohortSize, poisson.Fraction, poisson.Sampling = 0, 0.5, SamplingPoisson
			if _, err := NewCoordinatorMachine(poisson, got); err == nil || !strings.Contains(err.Error(), "keep sampling fixed") {
				t.Errorf("a legacy state under Poisson sampling: %v", err)
			}
			if math.Abs(got.Epsilon-onGrid) > 1e-12*onGrid || got.DPRounds != nil || len(got.RDP) != len(orders) {
				t.Errorf("legacy state: ε %v (grid %v), %d RDP values, rounds %v", got.Epsilon, onGrid, len(got.RDP), got.DPRounds)
			}
			continue
		}
		if got.RDP != nil || len(got.DPRounds) != 1 || got.DPRounds[0] != (accountant.Composition{Z: 2, Q: 0.5, Steps: 3}) ||
			!(got.Epsilon <= onGrid) || got.Epsilon < 0.98*onGrid {
			t.Errorf("new state: ε %v (grid %v), rounds %v, RDP %v", got.Epsilon, onGrid, got.DPRounds, got.RDP)
		}
	}
}

// TestPoissonSamplingPLD: Poisson cohorts (each client independently with
// probability q, reproducibly) accounted by the PLD: after each round the
// state's ε is the PLD accountant's for that many rounds at rate q — at
// most the RDP bound — whatever size the cohort came out. A restart under
// another sampling, and settings the accountant does not cover, are
// refused.
func TestPoissonSamplingPLD(t *testing.T) {
	p := testPolicy()
	p.Rounds, p.CohortSize, p.Quorum, p.Fraction, p.Sampling = 0, 0, 1, 0.3, SamplingPoisson
	p.DP = &DPPolicy{Clip: 1, Noise: 1.5, Delta: 1e-5, Accountant: AccountantPLD}
	var names []string
	for i := range 40 {
		names = append(names, fmt.Sprintf("c%02d", i))
	}
	if a, b := SelectPoisson(7, 3, names, 0.3), SelectPoisson(7, 3, names, 0.3); !slices.Equal(a, b) {
		t.Fatal("a Poisson cohort is not reproducible")
	}
	total := 0
	for r := uint64(1); r <= 200; r++ {
		total += len(SelectPoisson(7, r, names, 0.3))
	}
	// 200 rounds × 40 clients × 0.3 = 2400 expected, sd √(8000·0.21) ≈ 41.
	if total < 2400-200 || total > 2400+200 {
		t.Errorf("%d clients drawn over 200 rounds at q = 0.3 of 40, expected 2400", total)
	}

	m := newTestMachine(t, p, names...)
	sizes := map[int]bool{}
	for round := uint64(1); round <= 4; round++ {
		sr := only[StartRound](t, m.Tick(t0))
		sizes[len(sr.Cohort)] = true
		for i, c := range sr.Cohort {
			m.Accept(t0, receipt(header(m, c, byte(i))))
		}
		only[RoundPublished](t, m.Aggregated(round, round+1, 0))
		pld, _ := accountant.NewPLDAccountant(accountant.PLDOptions{})
		pld.Compose(1.5, 0.3, int(round))
		want, _ := pld.Epsilon(1e-5)
		rdp, _, _ := accountant.OptimalEpsilon(accountant.Poisson{}, []accountant.Composition{{Z: 1.5, Q: 0.3, Steps: int(round)}}, 1e-5)
		if got := m.State().Epsilon; got != want.Upper || !(got < rdp) {
			t.Fatalf("round %d: ε %v, the PLD gives %v (RDP %v)", round, got, want.Upper, rdp)
		}
	}
	if len(sizes) < 2 {
		t.Errorf("four Poisson cohorts all of one size %v", sizes)
	}
	if st := m.State(); st.DPSampling != SamplingPoisson || st.DPRounds[0] != (accountant.Composition{Z: 1.5, Q: 0.3, Steps: 4}) {
		t.Errorf("state %v %v", st.DPSampling, st.DPRounds)
	}
	// A draw of nobody is a round abandoned at once (nothing released,
	// nothing spent), and the next tick draws the next round.
	tiny := p
	tiny.Fraction = 1e-9
	m2 := newTestMachine(t, tiny, "a", "b")
	if ab := only[RoundAbandoned](t, m2.Tick(t0)); ab.Round != 1 || !strings.Contains(ab.Reason, "drew none") || m2.State().Phase != PhaseIdle || m2.State().Epsilon != 0 {
		t.Errorf("empty Poisson draw: %+v, state %+v", ab, m2.State())
	}
	if ab := only[RoundAbandoned](t, m2.Tick(t0)); ab.Round != 2 {
		t.Errorf("next draw: %+v", ab)
	}
	fixed := p
	fixed.Sampling, fixed.DP = SamplingFixed, &DPPolicy{Clip: 1, Noise: 1.5, Delta: 1e-5}
	if _, err := NewCoordinatorMachine(fixed, m.State()); err == nil || !strings.Contains(err.Error(), "accounted for poisson sampling") {
		t.Errorf("restart under fixed sampling: %v", err)
	}
	for name, edit := range map[string]func(*Policy){
		"pld with fixed cohorts": func(q *Policy) { q.Sampling = SamplingFixed },
		"pld with local DP":      func(q *Policy) { q.DP.Local = true },
		"poisson with a size":    func(q *Policy) { q.CohortSize = 5 },
		"poisson without rate":   func(q *Policy) { q.Fraction = 0 },
		"poisson with secagg":    func(q *Policy) { q.SecAgg = &SecAggPolicy{} },
		"unknown sampling":       func(q *Policy) { q.Sampling = "stratified" },
		"unknown accountant":     func(q *Policy) { q.DP.Accountant = "moments" },
	} {
		q := p
		dp := *p.DP
		q.DP = &dp
		edit(&q)
		if err := q.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
