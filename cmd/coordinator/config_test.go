package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServeConfigDP(t *testing.T) {
	write := func(s string) string {
		p := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(p, []byte("dir = \"coord\"\n"+s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := loadServeConfig(write("[dp]\nenabled = true\nnoise = 1.2\nclip = 0.5\nbudget = 8\nadaptive = true\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := c.policy()
	if err != nil {
		t.Fatal(err)
	}
	if p.DP == nil || p.DP.Noise != 1.2 || p.DP.Clip != 0.5 || p.DP.Epsilon != 8 || !p.DP.Adaptive || p.DP.Delta != 1e-5 {
		t.Fatalf("dp policy %+v", p.DP)
	}
	if c.Adapter.Model != "" || !strings.HasSuffix(c.Store, filepath.Join("coord", "state.db")) {
		t.Fatalf("paths: %+v", c)
	}
	for want, cfg := range map[string]string{
		"noise multiplier 0":   "[dp]\nenabled = true\n",
		"delta 2":              "[dp]\nenabled = true\nnoise = 1\ndelta = 2\n",
		"budget epsilon -1":    "[dp]\nenabled = true\nnoise = 1\nbudget = -1\n",
		"unknown keys: dp.z":   "[dp]\nz = 1\n",
		"upload bits 5":        "[train]\nbits = 5\n",
		"rounds.timeout \"x\"": "[rounds]\ntimeout = \"x\"\n",
	} {
		c, err := loadServeConfig(write(cfg))
		if err == nil {
			_, _, err = c.policy()
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want it to mention %q", cfg, err, want)
		}
	}
	c, _ = loadServeConfig(write("[adapter]\nmodel = \"builtin\"\n"))
	if c.Adapter.Model != "builtin" {
		t.Fatalf("model = %q: the built-in name must not become a path", c.Adapter.Model)
	}
}
