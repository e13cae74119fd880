package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/kronfed/kronfed/task"
)

// runData is `client data fetch|list`: the benchmark datasets, downloaded
// from their published sources (or a mirror of a data folder) into a data
// folder with every file's size and SHA-256 checked.
func runData(args []string, stdout io.Writer) error {
	if len(args) == 0 || (args[0] != "fetch" && args[0] != "list") {
		return errors.New("data: want `data list` or `data fetch [--dir DIR] [--mirror URL] NAME... | all`")
	}
	if args[0] == "list" {
		for _, d := range task.Catalog {
			where := "published"
			for _, f := range d.Files {
				if f.URL == "" {
					where = "mirror only (--mirror)"
				}
			}
			fmt.Fprintf(stdout, "%-14s %d files, %s — %s\n", d.Name, len(d.Files), where, d.Source)
		}
		return nil
	}
	fs := newFlags("data fetch")
	dir := fs.String("dir", defaultDataDir(), "data folder to fetch into (one subfolder per dataset)")
	mirror := fs.String("mirror", "", "base URL of a copy of a data folder (DIR/NAME/FILE); files are fetched from it instead of their published sources")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	names := fs.Args()
	if len(names) == 0 {
		return errors.New("data fetch: name the datasets (or all); `client data list` shows them")
	}
	if len(names) == 1 && names[0] == "all" {
		names = nil
		for _, d := range task.Catalog {
			names = append(names, d.Name)
		}
	}
	var sets []task.Dataset
	for _, n := range names {
		if strings.HasPrefix(n, "-") {
			return fmt.Errorf("data fetch: %s after the names: flags go first", n)
		}
		d, err := task.FindDataset(n)
		if err != nil {
			return fmt.Errorf("data fetch: %w", err)
		}
		sets = append(sets, d)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opt := task.FetchOptions{Mirror: *mirror, Log: func(format string, a ...any) { fmt.Fprintf(stdout, format+"\n", a...) }}
	for _, d := range sets {
		if err := task.Fetch(ctx, d, *dir, opt); err != nil {
			return fmt.Errorf("data fetch: %w", err)
		}
	}
	fmt.Fprintf(stdout, "%d dataset(s) in %s, every file checked against its SHA-256\n", len(sets), *dir)
	return nil
}
