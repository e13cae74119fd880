// Command client is kronfed's client: it fine-tunes adapters on a frozen model,
// inspects and exports adapter files, and measures the CPU kernels.
//
//	client params --config FILE --adapter kron|lora [--rank R] [--dA2 D] [--json]
//	client init --config FILE --adapter kron|lora --out FILE [--init peft|random]
//	client generate --model FILE [--prompt TEXT] --max-tokens N --temperature 0
//	client train --model M --task T --adapter kron|lora [--epochs E] [--out FILE]
//	client join --coordinator ADDR --bundle FILE --model M --task T [--shard i/N]
//	client eval --model M --task T [--adapter FILE] [--split validation]
//	client quant-report --adapter FILE [--bits 8,4] [--json]
//	client export --adapter FILE --out DIR [--format lokr|lora|merged]
//	client bench kernels [--json]
//	client bench train [--json]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/model"
)

type command struct {
	name, summary string
	run           func(args []string, stdout io.Writer) error
}

var commands = []command{
	{"params", "count a model's trainable parameters and upload size under an adapter", runParams},
	{"init", "write a freshly initialized adapter file for a model", runInit},
	{"generate", "continue a prompt with a decoder (greedy at temperature 0)", runGenerate},
	{"train", "fine-tune an adapter locally on a task", runTrain},
	{"join", "take part in a federation: join a coordinator, train each round, upload encrypted quantized updates", runJoin},
	{"eval", "score a model (and adapter) on a task", runEval},
	{"quant-report", "quantize an adapter's factors and report the error against the paper's bound", runQuantReport},
	{"export", "export an adapter file to PEFT (LoKr or LoRA) or as merged ΔW", runExport},
	{"bench", "measure the CPU kernels (bench kernels) or a whole training step (bench train)", runBench},
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "client:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(os.Stderr)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout)
		}
	}
	usage(os.Stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: client <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'client <command> -h' for a command's flags.")
}

// newFlags makes a flag set that reports errors instead of exiting, so every
// command's bad input comes back through run.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("client "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// parseFlags parses args and rejects stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// modelAdapterFlags are the flags naming a base model and the adapter to put
// on it, shared by the commands that build adapters for a model.
type modelAdapterFlags struct {
	config, kind *string
	rank, dA2    *int
	alpha        *float64
}

func addModelAdapterFlags(fs *flag.FlagSet) *modelAdapterFlags {
	return &modelAdapterFlags{
		config: fs.String("config", "", "Hugging Face config.json of the base model (required)"),
		kind:   fs.String("adapter", "kron", "adapter kind: kron or lora"),
		rank:   fs.Int("rank", 8, "rank r of B1·B2 (kron) or q (lora)"),
		dA2:    fs.Int("dA2", 0, "rows of the Kronecker factor A (kron only; 0: divisor of the hidden size closest to hidden/200)"),
		alpha:  fs.Float64("alpha", 32, "scale numerator: ΔW is multiplied by alpha/rank"),
	}
}

// load reads the model config and builds the validated adapter config
// (dA2 still 0 when defaulted: CountParams and Resolve fill it).
func (f *modelAdapterFlags) load(cmd string) (*model.Config, adapter.Config, error) {
	var ac adapter.Config
	if *f.config == "" {
		return nil, ac, fmt.Errorf("%s: --config is required", cmd)
	}
	k, err := adapter.ParseKind(*f.kind)
	if err != nil {
		return nil, ac, fmt.Errorf("%s: --adapter: %w", cmd, err)
	}
	if k == adapter.KindLoRA && *f.dA2 != 0 {
		return nil, ac, fmt.Errorf("%s: --dA2 applies to kron adapters only", cmd)
	}
	cfg, err := model.LoadConfig(*f.config)
	if err != nil {
		return nil, ac, fmt.Errorf("%s: %w", cmd, err)
	}
	ac = adapter.DefaultConfig(k)
	ac.Rank, ac.DA2, ac.Alpha = *f.rank, *f.dA2, float32(*f.alpha)
	if err := ac.Validate(); err != nil {
		return nil, ac, fmt.Errorf("%s: %w", cmd, err)
	}
	return cfg, ac, nil
}
