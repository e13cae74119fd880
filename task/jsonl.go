package task

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Your own multiple-choice data: a JSON-lines file, one question a line.
//
//	{"question": "Which gas do plants take in?", "choices": ["oxygen", "carbon dioxide"], "answer": 1}
//	{"id": "q2", "context": "Read: ...", "question": "...", "choices": [...], "answer": 0, "split": "test"}
//
//	question  the question (required, non-empty)
//	choices   at least two answer texts (required, non-empty, distinct)
//	answer    the 0-based index of the correct choice (required)
//	id        a unique id (default: the 1-based line number)
//	context   text before the question (optional: a passage, instructions)
//	split     "train", "validation" or "test" (optional)
//
// Decoders score "{context}\n\nQuestion: {question}\nAnswer:" followed by
// " {choice}", ARC's lm-evaluation-harness format; encoders read the
// (question, choice) pair. Without split fields the file is split 80/10/10
// with the given seed, and the splits' Note says so.

// JSONLExt is the file extension a task file is recognised by.
const JSONLExt = ".jsonl"

// IsJSONLPath reports whether a task name is a path to a JSON-lines file.
func IsJSONLPath(name string) bool { return strings.HasSuffix(strings.ToLower(name), JSONLExt) }

type mcRecord struct {
	ID       *string         `json:"id"`
	Context  *string         `json:"context"`
	Question *string         `json:"question"`
	Choices  []string        `json:"choices"`
	Answer   json.RawMessage `json:"answer"`
	Split    *string         `json:"split"`
}

// LoadJSONL reads a multiple-choice JSON-lines file (see the format above)
// as splits; every error names the file, the line and the field.
func LoadJSONL(path string, seed uint64) (*Splits, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	name := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	byName := map[string]*Task{}
	seen := map[string]int{}
	var order []string
	var all Task
	explicit := 0
	err = jsonLines(path, data, func(ln int, r *mcRecord) error {
		it, split, err := mcItem(ln, r)
		if err != nil {
			return err
		}
		if first, dup := seen[it.ID]; dup {
			return fmt.Errorf("id %q repeats line %d's", it.ID, first)
		}
		seen[it.ID] = ln
		if split == "" {
			all.Items = append(all.Items, it)
			return nil
		}
		explicit++
		t := byName[split]
		if t == nil {
			t = &Task{Name: name, Source: path}
			byName[split] = t
			order = append(order, split)
		}
		t.Items = append(t.Items, it)
		return nil
	})
	if err != nil {
		return nil, err
	}
	switch {
	case explicit > 0 && len(all.Items) > 0:
		return nil, perr(path, 0, "%d lines name their split and %d do not: give every line a split, or none", explicit, len(all.Items))
	case explicit > 0:
		s := &Splits{Name: name, Train: byName["train"], Validation: byName["validation"], Test: byName["test"],
			Note: fmt.Sprintf("%s: splits as the file names them (%s)", path, strings.Join(order, ", "))}
		if s.Train == nil || len(s.Train.Items) == 0 {
			return nil, perr(path, 0, `no line has "split": "train"`)
		}
		if s.Validation == nil {
			// Hold out a tenth of train for choosing the best epoch.
			s.Train, s.Validation = s.Train.Split(0.9, seed)
			s.Note += fmt.Sprintf("; no validation split: 10%% of train held out (seed %d)", seed)
		}
		return s, nil
	}
	if len(all.Items) < 3 {
		return nil, perr(path, 0, "%d items: at least 3 are needed to split train/validation/test", len(all.Items))
	}
	all.Name, all.Source = name, path
	train, rest := all.Split(0.8, seed)
	val, test := rest.Split(0.5, seed+1)
	return &Splits{Name: name, Train: train, Validation: val, Test: test,
		Note: fmt.Sprintf("%s: %d items without split fields, split 80/10/10 with seed %d", path, len(all.Items), seed)}, nil
}

// mcItem checks one record and builds its item.
func mcItem(ln int, r *mcRecord) (Item, string, error) {
	id := fmt.Sprint(ln)
	if r.ID != nil {
		if blank(*r.ID) {
			return Item{}, "", errors.New(`field "id" is empty`)
		}
		id = *r.ID
	}
	switch {
	case r.Question == nil:
		return Item{}, "", errors.New(`missing field "question"`)
	case blank(*r.Question):
		return Item{}, "", errors.New(`field "question" is empty`)
	case r.Choices == nil:
		return Item{}, "", errors.New(`missing field "choices"`)
	case len(r.Choices) < 2:
		return Item{}, "", fmt.Errorf(`field "choices" has %d entries, want at least 2`, len(r.Choices))
	case r.Answer == nil:
		return Item{}, "", errors.New(`missing field "answer"`)
	}
	for i, c := range r.Choices {
		if blank(c) {
			return Item{}, "", fmt.Errorf(`field "choices": entry %d is empty`, i)
		}
		for j := 0; j < i; j++ {
			if r.Choices[j] == c {
				return Item{}, "", fmt.Errorf(`field "choices": entries %d and %d are both %q`, j, i, c)
			}
		}
	}
	var answer int
	if err := json.Unmarshal(r.Answer, &answer); err != nil {
		return Item{}, "", fmt.Errorf(`field "answer" must be the 0-based index of the correct choice, got %s`, r.Answer)
	}
	if answer < 0 || answer >= len(r.Choices) {
		return Item{}, "", fmt.Errorf(`field "answer" is %d, outside the %d choices (0-based)`, answer, len(r.Choices))
	}
	split := ""
	if r.Split != nil {
		switch *r.Split {
		case "train", "validation", "test":
			split = *r.Split
		default:
			return Item{}, "", fmt.Errorf(`field "split" is %q, want train, validation or test`, *r.Split)
		}
	}
	ctx := "Question: " + *r.Question + "\nAnswer:"
	if r.Context != nil && !blank(*r.Context) {
		ctx = *r.Context + "\n\n" + ctx
	}
	it := Item{ID: id, Context: ctx, Choices: append([]string(nil), r.Choices...), Label: answer, Query: *r.Question}
	if err := it.Validate(); err != nil {
		return Item{}, "", err
	}
	return it, split, nil
}
