// Command simulate runs federated experiments on one machine: a coordinator
// and many clients in one process, on the same protocol, encryption and
// store as a deployment.
//
//	simulate forgetting [--config FILE] [flags]   the sequential-task forgetting protocol (the default experiment)
//	simulate run [--config FILE] --task T --rounds R [flags]       one task, accuracy and ε per round
//	simulate sweep [--config FILE] --task T --sweep-noise 0,0.5,1 [--sweep-clip ..] [--sweep-bits ..] [--sweep-lr ..] [--adapters ..]
//	simulate accountant --noise Z --sample-rate Q --steps T --delta D [--json]
package main

import (
	"flag"

	"github.com/kronfed/kronfed/internal/cli"
)

var program = &cli.Program{Name: "simulate", Commands: []cli.Command{
	{Name: "run", Summary: "federated training on one task: clients, rounds, DP, bits, rule, transport; accuracy and ε per round", Run: runRun},
	{Name: "sweep", Summary: "privacy sweep: adapters × learning rate × bits × noise multiplier × clipping norm on one task; accuracy-vs-ε table and plot", Run: runSweep},
	{Name: "audit", Summary: "run with the one-shot empirical privacy audit: canary clients, and ε̂ of the published adapter next to the accountant's ε each round", Run: runAudit},
	{Name: "accountant", Summary: "ε of client-level DP-FedAvg (RDP at its best order, or the PLD), or the noise a target ε needs", Run: runAccountant},
	{Name: "report", Summary: "one results page (Markdown and self-contained HTML) of run folders: tables, plots, settings, seeds and the command to reproduce each", Run: runReport},
	{Name: "forgetting", Summary: "federated sequential-task forgetting: train on A, then B, measure A again; Kron-LoRA vs LoRA side by side", Run: runForgetting},
}}

func main() { program.Main() }

func newFlags(name string) *flag.FlagSet { return cli.NewFlags("simulate", name) }

func parseFlags(fs *flag.FlagSet, args []string) error { return cli.ParseFlags(fs, args) }
