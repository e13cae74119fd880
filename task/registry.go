package task

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Split policy of Load (see SOURCES.md in the shared data folder).
const (
	// SplitSeed seeds every split Load makes.
	SplitSeed uint64 = 20240917
	// ARCTestFraction of ARC's train file is held back as Test (ARC's test
	// split is not in the shared data); Validation is the published one.
	ARCTestFraction = 0.2
	// TrainFraction of PIQA's and HellaSwag's labelled validation set becomes
	// Train, the rest Validation (their train splits are not in the shared data).
	TrainFraction = 0.8
)

// Splits are the parts of one dataset. Test is nil where there is none
// (PIQA, HellaSwag, WinoGrande: use Validation for evaluation there).
type Splits struct {
	Name                    string
	Train, Validation, Test *Task
	// Note states the split policy, for reports.
	Note string
}

// Names lists the datasets Load knows.
func Names() []string {
	return []string{"arc-challenge", "arc-easy", "hellaswag", "piqa", "winogrande"}
}

// Load reads a dataset from dataDir (the shared data folder, holding
// arc-easy/, arc-challenge/, piqa/, winogrande/, hellaswag/) and splits it:
//
//   - arc-easy, arc-challenge: Validation is the published validation file;
//     the published train file is split by seed SplitSeed into Test
//     (ARCTestFraction of it, 450 / 224 items) and Train (the rest, 1,801 / 895).
//   - piqa (valid.jsonl + valid-labels.lst, 1,838) and hellaswag
//     (hellaswag_val_full.txt.bz2, 10,042): the labelled validation set is split
//     by seed SplitSeed into Train (TrainFraction: 1,470 / 8,034) and
//     Validation (the rest: 368 / 2,008); Test is nil.
//   - winogrande: Train is train_m.jsonl (2,558, the largest given), Validation
//     dev.jsonl (1,267); Test is nil.
func Load(name, dataDir string) (*Splits, error) {
	p := func(elem ...string) string { return filepath.Join(append([]string{dataDir}, elem...)...) }
	switch name {
	case "arc-easy":
		return loadARCSplits(name, p("arc-easy", "train.json"), p("arc-easy", "validation.json"), p("arc-easy", "test.json"), p("arc-easy", "test.jsonl"))
	case "arc-challenge":
		return loadARCSplits(name, p("arc-challenge", "ARC-Challenge_train.jsonl"), p("arc-challenge", "ARC-Challenge_validation.jsonl"),
			p("arc-challenge", "ARC-Challenge_test.jsonl"), p("arc-challenge", "test.jsonl"))
	case "piqa":
		all, err := LoadPIQA(p("piqa", "valid.jsonl"), p("piqa", "valid-labels.lst"))
		if err != nil {
			return nil, err
		}
		return splitValidation(name, all), nil
	case "hellaswag":
		all, err := LoadHellaSwagText(p("hellaswag", "hellaswag_val_full.txt.bz2"))
		if err != nil {
			return nil, err
		}
		all.Note = "text form preprocessed by its producer (ctx_b not capitalized), used verbatim"
		return splitValidation(name, all), nil
	case "winogrande":
		train, err := LoadWinoGrande(p("winogrande", "train_m.jsonl"))
		if err != nil {
			return nil, err
		}
		val, err := LoadWinoGrande(p("winogrande", "dev.jsonl"))
		if err != nil {
			return nil, err
		}
		train.Note = "train_m (2,558), the largest train set given; XL is not in the shared data"
		val.Note = "dev.jsonl as published"
		return &Splits{Name: name, Train: train, Validation: val,
			Note: "winogrande: Train = train_m.jsonl, Validation = dev.jsonl, no test split (labels of test.jsonl are not public)"}, nil
	}
	return nil, fmt.Errorf("task: unknown dataset %q (known: %s; synthetic tasks via Synthetic)", name, strings.Join(Names(), ", "))
}

// loadARCSplits reads ARC's train and validation files and its published
// test file when one of testPaths exists; only without one is a part of
// train held back as Test, and the notes say so.
func loadARCSplits(name, trainPath, valPath string, testPaths ...string) (*Splits, error) {
	train, err := LoadARC(trainPath)
	if err != nil {
		return nil, err
	}
	val, err := LoadARC(valPath)
	if err != nil {
		return nil, err
	}
	train.Name, val.Name = name, name
	val.Note = "validation file as published"
	for _, tp := range testPaths {
		if _, err := os.Stat(tp); err != nil {
			continue
		}
		test, err := LoadARC(tp)
		if err != nil {
			return nil, err
		}
		test.Name = name
		train.Note, test.Note = "train file as published", "test file as published: "+tp
		return &Splits{Name: name, Train: train, Validation: val, Test: test,
			Note: fmt.Sprintf("%s: train, validation and test files as published", name)}, nil
	}
	tr, te := train.Split(1-ARCTestFraction, SplitSeed)
	tr.Note = fmt.Sprintf("train file minus a held-back %s (seed %d): %d of %d items", pct(ARCTestFraction), SplitSeed, tr.Len(), train.Len())
	te.Note = fmt.Sprintf("held back from the train file, not ARC's published test split: %s of it (seed %d), %d items", pct(ARCTestFraction), SplitSeed, te.Len())
	return &Splits{Name: name, Train: tr, Validation: val, Test: te,
		Note: fmt.Sprintf("%s: no test file (%s); Test is %s of the train file held back by seed %d, Train the rest, Validation as published",
			name, strings.Join(testPaths, " or "), pct(ARCTestFraction), SplitSeed)}, nil
}

func splitValidation(name string, all *Task) *Splits {
	all.Name = name
	tr, va := all.Split(TrainFraction, SplitSeed)
	tr.Note = joinNote(all.Note, fmt.Sprintf("%s of the published validation set (seed %d): %d of %d items", pct(TrainFraction), SplitSeed, tr.Len(), all.Len()))
	va.Note = joinNote(all.Note, fmt.Sprintf("the other %s of the published validation set (seed %d): %d of %d items", pct(1-TrainFraction), SplitSeed, va.Len(), all.Len()))
	return &Splits{Name: name, Train: tr, Validation: va,
		Note: fmt.Sprintf("%s: no labelled train split is available; the published validation set is split %s/%s by seed %d into Train/Validation; no Test",
			name, pct(TrainFraction), pct(1-TrainFraction), SplitSeed)}
}

// pct formats a fraction as a percentage for notes, e.g. 0.2 → "20%".
func pct(f float64) string { return fmt.Sprintf("%.4g%%", 100*f) }
