package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/secure"
)

// runVerify is `coordinator verify`: every round of a stopped coordinator
// whose uploads its store still holds is recomputed — uploads decrypted,
// signatures checked, combined by the federation's rule from the stored
// base version — and compared byte for byte with the global adapter it
// published. It fails on the first round whose result differs or whose
// store disagrees with what was published.
func runVerify(args []string, stdout io.Writer) error {
	fs := newFlags("verify")
	configPath := fs.String("config", "", "the coordinator's TOML config, as given to serve (required: the rule, the bit width and the key)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *configPath == "" {
		return errors.New("verify: --config is required")
	}
	cfg, err := loadServeConfig(*configPath)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	policy, rule, err := cfg.policy()
	if err != nil {
		return fmt.Errorf("verify: %s: %w", *configPath, err)
	}
	material, err := secure.LoadDir(cfg.Dir)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	st, err := openStoreOffline("", cfg.Store)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer st.Close()
	var rounds []uint64
	if err := st.Rounds(0, func(round uint64, _ []byte) error { rounds = append(rounds, round); return nil }); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	var equal, skipped int
	for _, round := range rounds {
		rp, err := fed.ReplayRound(st, material.Identity, policy, rule, round)
		if err != nil {
			return fmt.Errorf("verify: %w", err)
		}
		if rp.Skipped != "" {
			skipped++
			fmt.Fprintf(stdout, "round %d: not replayed: %s\n", round, rp.Skipped)
			continue
		}
		var who []string
		for _, u := range rp.Uploads {
			who = append(who, fmt.Sprintf("%s×%d", u.Client, u.Examples))
		}
		if !rp.Equal {
			return fmt.Errorf("verify: round %d: version %d differs from %s over its %d accepted uploads (%s): largest difference %.3g",
				round, rp.Published.Version, rule, len(rp.Uploads), strings.Join(who, " "), rp.MaxAbsDiff)
		}
		equal++
		fmt.Fprintf(stdout, "round %d: version %d = %s of %d accepted uploads (%s), byte for byte\n",
			round, rp.Published.Version, rule, len(rp.Uploads), strings.Join(who, " "))
	}
	fmt.Fprintf(stdout, "verified %d rounds: %d equal to their replay, %d not replayable\n", len(rounds), equal, skipped)
	return nil
}
