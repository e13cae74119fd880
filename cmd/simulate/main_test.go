package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadConfigRefusedBeforeWork: impossible settings fail with a message
// naming what is wrong, before any training.
func TestBadConfigRefusedBeforeWork(t *testing.T) {
	cases := map[string][]string{
		"unknown task":          {"--pairs", "add-mod-10:nope"},
		"cohort 9 exceeds":      {"--cohort", "9"},
		"upload bits 5":         {"--bits", "5"},
		"partition":             {"--partition", "skewed"},
		"adapter":               {"--adapters", "dora:8"},
		"kron-exact needs":      {"--adapters", "lora:8", "--rule", "kron-exact"},
		"rounds-a and rounds-b": {"--rounds-a", "0"},
		"unknown keys: colour":  {"--config", writeConfig(t, "colour = 1\n")},
	}
	for want, args := range cases {
		var out bytes.Buffer
		err := program.Run(append([]string{"forgetting", "--out", t.TempDir()}, args...), &out)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: error %v, want it to mention %q", args, err, want)
		}
		if strings.Contains(out.String(), "round") {
			t.Errorf("%v: work started before the error:\n%s", args, out.String())
		}
	}
}

func writeConfig(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "c.toml")
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
