// Command coordinator runs a kronfed federation: it creates the federation's
// keys, enrolls clients, and serves rounds over encrypted gRPC.
//
//	coordinator init --dir DIR [--name N] [--hosts H,...] [--age hybrid|x25519] [--sign Ed25519|ML-DSA-65]
//	coordinator enroll --dir DIR --name NAME [--out FILE] [--coordinator ADDR]
//	coordinator serve --config FILE
//	coordinator status --addr ADDR (--dir DIR | --bundle FILE) [--json]
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
	{"init", "create the federation's CA, TLS certificate, age identity, signing and gossip keys in a folder", runInit},
	{"enroll", "issue a client bundle (certificate, key, CA, the coordinator's recipient and verification key)", runEnroll},
	{"serve", "run rounds: cohort selection, signed broadcast, deadlines and quorum, aggregation, publication", runServe},
	{"status", "show a running coordinator's rounds, members and last results", runStatus},
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "coordinator:", err)
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
	fmt.Fprintln(w, "usage: coordinator <command> [flags]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'coordinator <command> -h' for a command's flags.")
}

func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("coordinator "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}
