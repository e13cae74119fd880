package cli

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

// TestHelpExitsZero: -h on a command prints its flags and is a success;
// bad flags and command errors exit 2.
func TestHelpExitsZero(t *testing.T) {
	p := &Program{Name: "x", Commands: []Command{{Name: "do", Summary: "does", Run: func(args []string, _ io.Writer) error {
		fs := NewFlags("x", "do")
		fs.Int("n", 1, "a number")
		if err := ParseFlags(fs, args); err != nil {
			return err
		}
		return errors.New("failed")
	}}}}
	var out bytes.Buffer
	for args, want := range map[string]int{"-h": 0, "--help": 0, "--n=x": 2, "": 2} {
		a := []string{"do"}
		if args != "" {
			a = append(a, args)
		}
		if got := ExitCode(p.Run(a, &out)); got != want {
			t.Errorf("do %s: exit %d, want %d", args, got, want)
		}
	}
	if got := ExitCode(p.Run([]string{"--help"}, &out)); got != 0 {
		t.Errorf("--help: exit %d", got)
	}
}

// TestVersion: `version` and --version print the program's name and the
// stamped version, the Go version and the platform.
func TestVersion(t *testing.T) {
	p := &Program{Name: "kf"}
	old := Version
	Version = "v9.9.9-test"
	defer func() { Version = old }()
	for _, arg := range []string{"version", "--version"} {
		var b strings.Builder
		if err := p.Run([]string{arg}, &b); err != nil {
			t.Fatal(err)
		}
		if got := b.String(); !strings.HasPrefix(got, "kf v9.9.9-test (go1.") || !strings.Contains(got, runtime.GOOS+"/"+runtime.GOARCH) {
			t.Errorf("%s: %q", arg, got)
		}
	}
}
