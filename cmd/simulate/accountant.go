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
	Sampling   string  `json:"sampling"`
	Noise      float64 `json:"noise"`
	SampleRate float64 `json:"sample_rate"`
	Steps      int     `json:"steps"`
	Delta      float64 `json:"delta"`
	Epsilon    float64 `json:"epsilon"`
	Order      float64 `json:"order"`
}

// runAccountant prints the (ε, δ) of client-level DP-FedAvg: Rényi DP of the
// subsampled Gaussian composed over the rounds, converted with Balle et
// al.'s bound; or, with --epsilon, the noise multiplier a target needs.
func runAccountant(args []string, stdout io.Writer) error {
	fs := newFlags("accountant")
	z := fs.Float64("noise", 0, "noise multiplier z (noise std / clipping norm)")
	q := fs.Float64("sample-rate", 0, "fraction of clients sampled per round (Poisson), or use --cohort and --population")
	cohort := fs.Int("cohort", 0, "fixed-size sampling: clients per round (with --population)")
	population := fs.Int("population", 0, "fixed-size sampling: clients in all")
	steps := fs.Int("steps", 0, "rounds")
	delta := fs.Float64("delta", 1e-5, "δ, in (0, 1)")
	target := fs.Float64("epsilon", 0, "instead: find the noise multiplier that reaches this ε after --steps rounds")
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
	rep := accountantReport{Sampling: name, Noise: *z, SampleRate: *q, Steps: *steps, Delta: *delta, Epsilon: eps, Order: order}
	if *asJSON {
		b, _ := json.MarshalIndent(rep, "", "  ")
		_, err := fmt.Fprintln(stdout, string(b))
		return err
	}
	_, err = fmt.Fprintf(stdout, "ε = %.6g at δ = %g (best Rényi order %g): noise multiplier %.6g, %s sampling at rate %g, %d rounds\n",
		eps, *delta, order, *z, name, *q, *steps)
	return err
}
