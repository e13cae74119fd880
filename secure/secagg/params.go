package secagg

import (
	"fmt"
	"math"
)

// Statistical parameters of RecommendedParams, those of Bell et al. 2020:
// a round leaks more than the sum with probability below 2^−40 and fails
// for lack of shares with probability below 2^−20.
const (
	securityBits    = 40
	correctnessBits = 20
)

// RecommendedParams searches, as SecAgg+ prescribes, for the smallest even
// degree k and a threshold t that make a round of n clients secure except
// with probability 2^−40 and complete except with probability 2^−20,
// assuming at most a fraction corrupt of the clients collude with the
// server and at most a fraction dropout drop out. With semiMalicious the
// threshold must also stop a server that lies about who dropped (2t − k
// above the number of corrupt neighbours); otherwise the server is
// honest-but-curious.
//
// For each even k it checks, by union bounds over the random Harary graph:
//
//   - that removing the corrupt and dropped clients disconnects the graph
//     with probability below 2^−41 (a disconnecting set must contain k/2
//     consecutive ring positions at two places);
//   - a threshold t exists with Pr[a client has ≥ t corrupt neighbours] and
//     Pr[a client has < t surviving neighbours] below 2^−41/n and 2^−20/n,
//     the neighbour counts being hypergeometric. The smallest such t is
//     returned.
//
// When no k < n−1 qualifies it tries the complete graph (k = n−1). Some
// values: n = 100, corrupt 0.05, dropout 0.33 gives k = 28; n = 1000 gives
// k = 72; corrupt = dropout = 1/3 gives k = 68 and 286.
func RecommendedParams(n int, corrupt, dropout float64, semiMalicious bool) (k, t int, err error) {
	if n < MinClients || n > MaxClients {
		return 0, 0, fmt.Errorf("secagg: recommended params: cohort of %d clients, want %d..%d", n, MinClients, MaxClients)
	}
	if !(corrupt >= 0 && corrupt < 1) || !(dropout >= 0 && dropout < 1) {
		return 0, 0, fmt.Errorf("secagg: recommended params: fractions %v and %v, want [0, 1)", corrupt, dropout)
	}
	// Beyond these the union bounds cannot be met for any degree (the
	// limits Google's SecAgg+ parameter finder also imposes).
	if corrupt+dropout > 0.9 {
		return 0, 0, fmt.Errorf("secagg: recommended params: %.3g corrupt and %.3g dropping is infeasible (need corrupt + dropout <= 0.9)", corrupt, dropout)
	}
	if semiMalicious && corrupt+2*dropout > 0.9 {
		return 0, 0, fmt.Errorf("secagg: recommended params: %.3g corrupt and %.3g dropping is infeasible against a semi-malicious server (need corrupt + 2·dropout <= 0.9)", corrupt, dropout)
	}
	const small = 1e-14 // keeps rounding of γn and δn on the safe side
	maxCorrupt := int(math.Floor((corrupt + small) * float64(n)))
	maxDropped := int(math.Floor((dropout + small) * float64(n)))
	minSurvivors := int(math.Ceil((1 - dropout - small) * float64(n)))
	secEps := math.Exp2(-(securityBits + 1)) / float64(n)
	corEps := math.Exp2(-correctnessBits) / float64(n)
	logSecEach := -(securityBits + 1) * math.Ln2

	threshold := func(k int) (int, bool) {
		// t1: corrupt neighbours exceed t1 with probability <= secEps.
		t1 := k
		tail := 0.0
		for x := k; x > 0; x-- {
			tail += math.Exp(hypergeomLogPMF(n, maxCorrupt, k, x))
			if tail > secEps {
				break
			}
			t1 = x - 1
		}
		// t2: fewer than t2 neighbours survive with probability <= corEps.
		t2 := 0
		cdf := 0.0
		for x := 1; x <= k; x++ {
			cdf += math.Exp(hypergeomLogPMF(n, minSurvivors, k, x-1))
			if cdf > corEps {
				break
			}
			t2 = x
		}
		if semiMalicious {
			t1 = (k + t1) / 2
		}
		if t2 <= t1 {
			return 0, false
		}
		return max(t1+1, 2), true
	}
	for k := 2; k < n-1; k += 2 {
		bad := maxCorrupt + maxDropped
		if k <= bad {
			logP := math.Log(float64(n)) + math.Log(float64(n-k-1)) - math.Ln2 +
				lgamma(bad+1) + lgamma(n-k+1) - lgamma(n+1) - lgamma(bad-k+1)
			if logP >= logSecEach {
				continue
			}
		}
		if t, ok := threshold(k); ok {
			return k, t, nil
		}
	}
	if t, ok := threshold(n - 1); ok {
		return n - 1, t, nil
	}
	return 0, 0, fmt.Errorf("secagg: recommended params: no degree and threshold give 2^-%d security and 2^-%d failure for %d clients with %.3g corrupt and %.3g dropping", securityBits, correctnessBits, n, corrupt, dropout)
}

func lgamma(x int) float64 {
	v, _ := math.Lgamma(float64(x))
	return v
}

// hypergeomLogPMF returns log Pr[X = x] for X the number of marked items in
// draws items drawn without replacement from total items of which marked
// are marked (−Inf outside the support).
func hypergeomLogPMF(total, marked, draws, x int) float64 {
	if x < 0 || x > draws || x > marked || draws-x > total-marked {
		return math.Inf(-1)
	}
	return lchoose(marked, x) + lchoose(total-marked, draws-x) - lchoose(total, draws)
}

func lchoose(a, b int) float64 { return lgamma(a+1) - lgamma(b+1) - lgamma(a-b+1) }
