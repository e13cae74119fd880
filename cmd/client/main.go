// Command client is kronfed's client: it fine-tunes adapters on a frozen model,
// inspects and exports adapter files, and measures the CPU kernels.
//
//	client params --config FILE --adapter kron|lora [--rank R] [--dA2 D] [--json]
//	client init --config FILE --adapter kron|lora --out FILE [--init peft|random]
//	client quant-report --adapter FILE [--bits 8,4] [--json]
//	client export --adapter FILE --out DIR [--format lokr|lora|merged]
//	client bench kernels [--json]
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

type command struct {
	name, summary string
	run           func(args []string, stdout io.Writer) error
}

var commands = []command{
	{"params", "count a model's trainable parameters and upload size under an adapter", runParams},
	{"init", "write a freshly initialized adapter file for a model", runInit},
	{"quant-report", "quantize an adapter's factors and report the error against the paper's bound", runQuantReport},
	{"export", "export an adapter file to PEFT (LoKr or LoRA) or as merged ΔW", runExport},
	{"bench", "measure the CPU kernels (client bench kernels)", runBench},
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
