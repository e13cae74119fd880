// Package cli is the small command framework the kronfed binaries share:
// subcommands with one-line summaries, flag sets that report errors instead
// of exiting, and a main that prints errors once and exits non-zero.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/BurntSushi/toml"
)

// Command is one subcommand.
type Command struct {
	Name, Summary string
	Run           func(args []string, stdout io.Writer) error
}

// Program is a binary made of subcommands.
type Program struct {
	Name     string
	Commands []Command
}

// Main runs the program on os.Args and exits with ExitCode.
func (p *Program) Main() {
	err := p.Run(os.Args[1:], os.Stdout)
	if code := ExitCode(err); code != 0 {
		fmt.Fprintf(os.Stderr, "%s: %v\n", p.Name, err)
		os.Exit(code)
	}
}

// ExitCode is the status a command's error exits with: 0 for success and
// for a request for help (-h: the usage was printed), 2 for anything else.
func ExitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}

// Version is the release a binary was built as, stamped by the release
// build (scripts/build-release.sh: -ldflags "-X
// github.com/kronfed/kronfed/internal/cli.Version=…"); empty otherwise.
var Version string

// VersionString is Version, else the VCS revision Go stamped into the
// build ("+dirty" with uncommitted changes), else "(devel)".
func VersionString() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return "(devel)"
	}
	return fmt.Sprintf("%.12s%s", rev, dirty)
}

// Run dispatches args to a subcommand; "version" (or --version) prints the
// program's version.
func (p *Program) Run(args []string, stdout io.Writer) error {
	if len(args) > 0 && (args[0] == "version" || args[0] == "--version") {
		fmt.Fprintf(stdout, "%s %s (%s, %s/%s)\n", p.Name, VersionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		p.Usage(os.Stderr)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	for _, c := range p.Commands {
		if c.Name == args[0] {
			return c.Run(args[1:], stdout)
		}
	}
	p.Usage(os.Stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

// Usage lists the subcommands.
func (p *Program) Usage(w io.Writer) {
	width := 0
	for _, c := range p.Commands {
		width = max(width, len(c.Name))
	}
	fmt.Fprintf(w, "usage: %s <command> [flags]\n\ncommands:\n", p.Name)
	for _, c := range p.Commands {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.Name, c.Summary)
	}
	fmt.Fprintf(w, "\nRun '%s <command> -h' for a command's flags, '%s version' for its version.\n", p.Name, p.Name)
}

// NewFlags makes a flag set for program's subcommand name that reports
// errors instead of exiting, so every command's bad input comes back
// through Run.
func NewFlags(program, name string) *flag.FlagSet {
	fs := flag.NewFlagSet(program+" "+name, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	return fs
}

// ParseFlags parses args and rejects stray positional arguments.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// DefaultDataDir is the shared data folder: $KRONFED_SHARED/data, else
// ../shared/data beside the working directory.
func DefaultDataDir() string {
	if d := os.Getenv("KRONFED_SHARED"); d != "" {
		return filepath.Join(d, "data")
	}
	return filepath.Join("..", "shared", "data")
}

// NewLogger makes a process's slog logger on stderr: format text or json,
// level debug, info, warn or error.
func NewLogger(format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// DecodeTOML reads a TOML file into v, refusing keys v has no field for (a
// misspelt setting must not be silently ignored).
func DecodeTOML(path string, v any) error {
	md, err := toml.DecodeFile(path, v)
	if err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("config %s: unknown keys: %s", path, strings.Join(keys, ", "))
	}
	return nil
}
