package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/fed"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/store"
)

// openStoreOffline opens a stopped coordinator's store (dir/state.db, or
// path): it fails fast, saying so, while a coordinator holds it.
func openStoreOffline(dir, path string) (*store.Store, error) {
	if path == "" {
		if dir == "" {
			return nil, errors.New("give --dir (the coordinator's folder) or --store")
		}
		path = filepath.Join(dir, "state.db")
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("the coordinator's store: %w", err)
	}
	st, err := store.Open(path, store.Options{Timeout: time.Second})
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%w (ask the running coordinator: `coordinator status`)", err)
	}
	return st, err
}

// runExport is `coordinator export`: a published global adapter out of a
// stopped coordinator's store, as the kronfed adapter file clients
// downloaded or as a PEFT folder.
func runExport(args []string, stdout io.Writer) error {
	fs := newFlags("export")
	dir := fs.String("dir", "", "the coordinator's folder (its store is dir/state.db)")
	storePath := fs.String("store", "", "the store file, when not dir/state.db")
	version := fs.String("version", "latest", "global adapter version to export: a number or latest")
	out := fs.String("out", "", "output: a .safetensors file (kronfed) or a folder (peft) (required)")
	format := fs.String("format", "kronfed", "kronfed (the adapter file as published, digest-checked) or peft (LoKr where PEFT's shape rules express it, else the exact LoRA rewrite)")
	baseModel := fs.String("base-model", "", "peft: base_model_name_or_path: the base model's Hugging Face id, or its local folder whose config.json records one (default: the name the federation records)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("export: --out is required")
	}
	v := uint64(0)
	if *version != "latest" {
		n, err := strconv.ParseUint(*version, 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("export: --version %q: want a version number ≥ 1 or latest", *version)
		}
		v = n
	}
	if *format != "kronfed" && *format != "peft" {
		return fmt.Errorf("export: --format %q: want kronfed or peft", *format)
	}
	st, err := openStoreOffline(*dir, *storePath)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer st.Close()
	g, err := fed.ReadStoredGlobal(st, v)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	written := *format
	if *format == "kronfed" {
		err = os.WriteFile(*out, g.File, 0o644)
	} else {
		hubID := *baseModel
		if hubID != "" {
			if hubID, err = model.HubID(hubID); err != nil {
				return fmt.Errorf("export: --base-model: %w", err)
			}
		}
		written, err = g.Set.ExportPEFTBest(*out, adapter.PEFTOptions{BaseModel: hubID})
		written = "PEFT " + written
	}
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	_, err = fmt.Fprintf(stdout, "exported global version %d (round %d; %s on %s, %d modules) to %s as %s\n",
		g.Version, g.Round, g.Set.Config, g.Set.BaseModel, len(g.Set.Modules), *out, written)
	return err
}
