// Package gradcheck checks analytic gradients against finite differences
// in tests: along random directions through all parameters at once (a
// large, well-conditioned signal), as the model's, the adapters' and the
// penalties' tests do.
package gradcheck

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/kronfed/kronfed/adapter"
)

// Options tune a check; zero fields take the defaults.
type Options struct {
	Step   float32 // finite-difference step along a unit-variance direction (default 1e-3)
	Trials int     // directions (default 4)
	// The check passes when |numeric − analytic| ≤ RelTol·|numeric| + AbsTol
	// (defaults 2e-2 and 1e-4).
	RelTol, AbsTol float64
	// Richardson extrapolates the difference from steps h and h/2,
	// (4·D(h/2) − D(h))/3: error O(h⁴) instead of O(h²), for losses curved
	// enough along a direction that the plain difference is off by a few
	// percent (a whole embedding table moved at once).
	Richardson bool
}

// Directional compares the gradient already in params' Grad with central
// finite differences of loss (which must read params' Data), restoring Data
// after each probe.
func Directional(t testing.TB, params []adapter.Factor, loss func() float64, rng *rand.Rand, o Options) {
	t.Helper()
	if o.Step == 0 {
		o.Step = 1e-3
	}
	if o.Trials == 0 {
		o.Trials = 4
	}
	if o.RelTol == 0 {
		o.RelTol = 2e-2
	}
	if o.AbsTol == 0 {
		o.AbsTol = 1e-4
	}
	for trial := 0; trial < o.Trials; trial++ {
		dir := make([][]float32, len(params))
		var analytic float64
		for i, f := range params {
			dir[i] = make([]float32, len(f.Data))
			for j := range dir[i] {
				dir[i][j] = float32(rng.NormFloat64())
				analytic += float64(dir[i][j]) * float64(f.Grad[j])
			}
		}
		diff := func(h float32) float64 {
			step := func(sign float32) {
				for i, f := range params {
					for j := range f.Data {
						f.Data[j] += sign * h * dir[i][j]
					}
				}
			}
			step(1)
			up := loss()
			step(-2)
			down := loss()
			step(1)
			return (up - down) / (2 * float64(h))
		}
		numeric := diff(o.Step)
		if o.Richardson {
			numeric = (4*diff(o.Step/2) - numeric) / 3
		}
		if math.Abs(numeric-analytic) > o.RelTol*math.Abs(numeric)+o.AbsTol {
			t.Errorf("direction %d: finite difference %.6g, gradient %.6g", trial, numeric, analytic)
		}
	}
}
