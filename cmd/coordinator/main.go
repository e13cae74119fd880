// Command coordinator runs a kronfed federation: it creates the federation's
// keys, enrolls clients, and serves rounds over encrypted gRPC.
//
//	coordinator init --dir DIR [--name N] [--hosts H,...] [--age hybrid|x25519] [--sign Ed25519|ML-DSA-65]
//	coordinator enroll --dir DIR --name NAME [--out FILE] [--coordinator ADDR]
//	coordinator serve --config FILE
//	coordinator status --addr ADDR (--dir DIR | --bundle FILE) [--json]
//	coordinator export --dir DIR --out FILE|FOLDER [--version N] [--format kronfed|peft]
//	coordinator verify --config FILE
package main

import (
	"flag"

	"github.com/kronfed/kronfed/internal/cli"
)

var program = &cli.Program{Name: "coordinator", Commands: []cli.Command{
	{Name: "init", Summary: "create the federation's CA, TLS certificate, age identity, signing and gossip keys in a folder", Run: runInit},
	{Name: "enroll", Summary: "issue a client bundle (certificate, key, CA, the coordinator's recipient and verification key)", Run: runEnroll},
	{Name: "serve", Summary: "run rounds: cohort selection, signed broadcast, deadlines and quorum, aggregation, publication", Run: runServe},
	{Name: "status", Summary: "show a coordinator's rounds, members and last results (from its store when it is not running)", Run: runStatus},
	{Name: "verify", Summary: "recompute every published round still in a stopped coordinator's store from its accepted uploads, and compare", Run: runVerify},
	{Name: "export", Summary: "write a published global adapter from a stopped coordinator's store (kronfed file or PEFT folder)", Run: runExport},
}}

func main() { program.Main() }

func newFlags(name string) *flag.FlagSet { return cli.NewFlags("coordinator", name) }

func parseFlags(fs *flag.FlagSet, args []string) error { return cli.ParseFlags(fs, args) }
