package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/kronfed/kronfed/aggregate/accountant"
)

// accountantReport is `simulate accountant --json`.
type accountantReport struct {
	Method     string  `json:"method"` // rdp or pld
	Sampling   string  `json:"sampling"`
	Noise      float64 `json:"noise"`
	SampleRate float64 `json:"sample_rate"`
	Steps      int     `json:"steps"`
	Delta      float64 `json:"delta"`
	Epsilon    float64 `json:"epsilon"`
	Order      float64 `json:"order,omitempty"` // rdp: the best Rényi order
	// pld: the optimistic estimate (the true ε lies in [EpsilonLower,
	// Epsilon]) and the loss grid's interval.
	EpsilonLower float64 `json:"epsilon_lower,omitempty"`
	Interval     float64 `json:"interval,omitempty"`
}

// runAccountant prints the (ε, δ) of client-level DP-FedAvg — Rényi DP of
// the subsampled Gaussian composed over the rounds, converted with Balle et
// al.'s bound at the best order (--method rdp), or its privacy loss
// distribution composed by FFT (--method pld, Poisson sampling) — or, with
// --epsilon, the noise multiplier a target needs (PLD: to 0.1%, rounded up).
func runAccountant(args []string, stdout io.Writer) error {
	fs := newFlags("accountant")
	z := fs.Float64("noise", 0, "noise multiplier z (noise std / clipping norm)")
	q := fs.Float64("sample-rate", 0, "fraction of clients sampled per round (Poisson), or use --cohort and --population")
	cohort := fs.Int("cohort", 0, "fixed-size sampling: clients per round (with --population)")
	population := fs.Int("population", 0, "fixed-size sampling: clients in all")
	steps := fs.Int("steps", 0, "rounds")
	delta := fs.Float64("delta", 1e-5, "δ, in (0, 1)")
	target := fs.Float64("epsilon", 0, "instead: find the noise multiplier that reaches this ε after --steps rounds")
	method := fs.String("method", "rdp", "rdp (Rényi DP at its best order; both samplings) or pld (privacy loss distribution; Poisson sampling): the PLD is tighter over many rounds")
	interval := fs.Float64("pld-interval", 1e-4, "pld: the loss grid's spacing; the bracket on ε is at most rounds × interval wide")
	pldMiB := fs.Int("pld-max-mib", 512, "pld: refuse a discretization that needs more memory than this")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	var s accountant.Sampling = accountant.Poisson{}
	name := "poisson"
	if *cohort > 0 || *population > 0 {
		w := accountant.WithoutReplacement{Cohort: *cohort, Population: *population}
		if *q != 0 && *q != w.Rate() {
			return fmt.Errorf("accountant: --sample-rate %v disagrees with --cohort/--population (%v)", *q, w.Rate())
		}
		s, name, *q = w, "without-replacement", w.Rate()
	}
	switch {
	case *steps <= 0:
		return errors.New("accountant: --steps (the rounds) is required and must be ≥ 1")
	case !(*q > 0 && *q <= 1):
		return fmt.Errorf("accountant: the sampling rate is required: --sample-rate in (0, 1] (Poisson sampling), or --cohort and --population (a fixed cohort drawn without replacement, as coordinators and the simulator sample); got %v", *q)
	case *target > 0 && *z != 0:
		return errors.New("accountant: give --noise (to get ε) or --epsilon (to get the noise), not both")
	case *target == 0 && !(*z > 0):
		return errors.New("accountant: --noise (the noise multiplier z > 0) or --epsilon is required")
	}
	switch *method {
	case "rdp":
	case "pld":
		if name != "poisson" {
			return errors.New("accountant: --method pld accounts Poisson sampling (--sample-rate) under add/remove-one adjacency; a fixed cohort drawn without replacement (--cohort/--population) is accounted with --method rdp")
		}
		return runPLDAccountant(stdout, *z, *q, *steps, *delta, *target, accountant.PLDOptions{Interval: *interval, MaxMiB: *pldMiB}, *asJSON)
	default:
		return fmt.Errorf("accountant: --method %q: want rdp or pld", *method)
	}
	acct, err := accountant.NewAccountant(s, accountant.DefaultOrders())
	if err != nil {
		return err
	}
	if *target > 0 {
		if *z, err = acct.NoiseForEpsilon(*target, *delta, *q, *steps); err != nil {
			return err
		}
	}
	if err := acct.Compose(*z, *q, *steps); err != nil {
		return err
	}
	eps, order, err := acct.Epsilon(*delta)
	if err != nil {
		return err
	}
	rep := accountantReport{Method: "rdp", Sampling: name, Noise: *z, SampleRate: *q, Steps: *steps, Delta: *delta, Epsilon: eps, Order: order}
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		_, err := fmt.Fprintln(stdout, string(b))
		return err
	}
	_, err = fmt.Fprintf(stdout, "ε = %.6g at δ = %g (RDP, best Rényi order %.4g): noise multiplier %.6g, %s sampling at rate %g, %d rounds\n",
		eps, *delta, order, *z, name, *q, *steps)
	return err
}

// runPLDAccountant is `simulate accountant --method pld`: ε of Poisson
// rounds from their privacy loss distribution, the pessimistic estimate
// with its bracket; with target > 0 the smallest noise multiplier (to 1e-3
// relative, rounded up) whose pessimistic ε meets it.
func runPLDAccountant(stdout io.Writer, z, q float64, steps int, delta, target float64, opts accountant.PLDOptions, asJSON bool) error {
	epsAt := func(z float64) (accountant.PLDBracket, error) {
		a, err := accountant.NewPLDAccountant(opts)
		if err != nil {
			return accountant.PLDBracket{}, err
		}
		if err := a.Compose(z, q, steps); err != nil {
			return accountant.PLDBracket{}, err
		}
		return a.Epsilon(delta)
	}
	if target > 0 {
		// The RDP bound's noise meets the target (the PLD is never looser);
		// step down from it to bracket lo < z ≤ hi — small z makes wide
		// PLDs, so never lower than needed — then bisect.
		meets := func(z float64) (bool, error) {
			e, err := epsAt(z)
			return e.Upper <= target, err
		}
		rdp, err := accountant.NewAccountant(accountant.Poisson{}, accountant.DefaultOrders())
		if err != nil {
			return err
		}
		hi, err := rdp.NoiseForEpsilon(target, delta, q, steps)
		if err != nil {
			return err
		}
		if ok, err := meets(hi); err != nil || !ok {
			return fmt.Errorf("accountant: the RDP bound's noise %g does not meet ε %g under the PLD (%v)", hi, target, err)
		}
		lo := 0.8 * hi
		for {
			ok, err := meets(lo)
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			hi, lo = lo, 0.8*lo
		}
		for hi-lo > 1e-3*hi {
			mid := (lo + hi) / 2
			e, err := epsAt(mid)
			if err != nil {
				return err
			}
			if e.Upper <= target {
				hi = mid
			} else {
				lo = mid
			}
		}
		z = hi
	}
	e, err := epsAt(z)
	if err != nil {
		return err
	}
	if opts.Interval == 0 {
		opts.Interval = 1e-4
	}
	rep := accountantReport{Method: "pld", Sampling: "poisson", Noise: z, SampleRate: q, Steps: steps, Delta: delta,
		Epsilon: e.Upper, EpsilonLower: e.Lower, Interval: opts.Interval}
	if asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		_, err := fmt.Fprintln(stdout, string(b))
		return err
	}
	_, err = fmt.Fprintf(stdout, "ε = %.6g at δ = %g (PLD, pessimistic; the true ε is in [%.6g, %.6g], loss interval %g): noise multiplier %.6g, poisson sampling at rate %g, %d rounds\n",
		e.Upper, delta, e.Lower, e.Upper, opts.Interval, z, q, steps)
	return err
}
