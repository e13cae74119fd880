package task

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TargetDelimiter goes between a context and a choice when a decoder scores the
// choice as a continuation (lm-evaluation-harness's default target_delimiter).
const TargetDelimiter = " "

// Item is one multiple-choice question. Choice i is the pair
// (ContextFor(i), Choices[i]); see the package documentation.
type Item struct {
	// ID is unique within a task: the dataset's own id where it has one
	// (ARC id, WinoGrande qID, HellaSwag ind), else a name and 0-based index.
	ID string
	// Context is the prompt shared by all choices (lm-evaluation-harness
	// format). It is empty when Contexts is set.
	Context string
	// Contexts, when non-nil, holds one context per choice and replaces
	// Context (partial scoring, as WinoGrande). len(Contexts) == len(Choices).
	Contexts []string
	// Choices are the candidate texts without the leading delimiter.
	Choices []string
	// Label is the index of the correct choice.
	Label int
	// Query is the bare question without prompt template (ARC question, PIQA
	// goal, WinoGrande sentence with its blank, HellaSwag context), for
	// reports and for encoders that prefer it.
	Query string
	// Class is the item's class key for label-skewed partitioning (see
	// ClassKey); empty means "the gold label index". Synthetic tasks set it to
	// the gold answer's class (e.g. the answer digit).
	Class string
	// Completion marks a prompt (Context) and its one completion
	// (Choices[0]) for causal-LM fine-tuning: trained on the completion's
	// tokens only, evaluated by perplexity and exact match (greedy decoding
	// reproduces it), not as a choice among several.
	Completion bool
}

// ContextFor returns the context choice i is scored under.
func (it *Item) ContextFor(i int) string {
	if it.Contexts != nil {
		return it.Contexts[i]
	}
	return it.Context
}

// Continuation returns the text a decoder scores for choice i:
// TargetDelimiter + Choices[i].
func (it *Item) Continuation(i int) string { return TargetDelimiter + it.Choices[i] }

// ClassKey is the key PartitionDirichlet skews by: it.Class, or the decimal gold
// label index when Class is empty.
func ClassKey(it *Item) string {
	if it.Class != "" {
		return it.Class
	}
	return strconv.Itoa(it.Label)
}

// Validate checks the invariants every scorer relies on: at least 2 choices,
// Label in range, non-empty choices (unless per-choice contexts carry the
// difference), len(Contexts) == len(Choices) when Contexts is set.
func (it *Item) Validate() error {
	if it.Completion {
		switch {
		case len(it.Choices) != 1 || it.Label != 0 || it.Contexts != nil:
			return errors.New("a completion item holds one completion (Choices[0], Label 0) and one context")
		case strings.TrimSpace(it.Context) == "":
			return errors.New("empty prompt")
		case strings.TrimSpace(it.Choices[0]) == "":
			return errors.New("empty completion")
		}
		return nil
	}
	if len(it.Choices) == 0 {
		return errors.New("no choices")
	}
	if len(it.Choices) < 2 {
		return fmt.Errorf("%d choice, need at least 2", len(it.Choices))
	}
	if it.Label < 0 || it.Label >= len(it.Choices) {
		return fmt.Errorf("label %d out of range [0,%d)", it.Label, len(it.Choices))
	}
	if it.Contexts != nil {
		if len(it.Contexts) != len(it.Choices) {
			return fmt.Errorf("%d contexts for %d choices", len(it.Contexts), len(it.Choices))
		}
		for i, c := range it.Contexts {
			if strings.TrimSpace(c) == "" {
				return fmt.Errorf("context %d is empty", i)
			}
		}
		return nil
	}
	for i, c := range it.Choices {
		if strings.TrimSpace(c) == "" {
			return fmt.Errorf("choice %d is empty", i)
		}
	}
	return nil
}

// Task is a named list of items: one split of one dataset, or a synthetic task.
// Items are shared, read-only values: Split and Subset copy the Item structs but
// not their string slices.
type Task struct {
	// Name is the dataset or family name, e.g. "arc-easy", "add-mod-10".
	Name string
	// Items are the questions, in file order (or generation order).
	Items []Item
	// Source names where the items came from (file path, or "synthetic").
	Source string
	// Note says how this split was made when it is not the file as published
	// (held-back test part, 80/20 split of a validation set, ...), for reports.
	Note string
}

// Len returns the number of items.
func (t *Task) Len() int { return len(t.Items) }

// Validate checks every item and that IDs are unique.
func (t *Task) Validate() error {
	if len(t.Items) == 0 {
		return fmt.Errorf("task %s: no items", t.Name)
	}
	seen := make(map[string]int, len(t.Items))
	for i := range t.Items {
		it := &t.Items[i]
		if err := it.Validate(); err != nil {
			return fmt.Errorf("task %s: item %d (%s): %w", t.Name, i, it.ID, err)
		}
		if j, dup := seen[it.ID]; dup {
			return fmt.Errorf("task %s: items %d and %d share id %q", t.Name, j, i, it.ID)
		}
		seen[it.ID] = i
	}
	return nil
}

// LabelCounts returns how often each gold label index occurs (length = the
// largest choice count).
func (t *Task) LabelCounts() []int {
	var counts []int
	for i := range t.Items {
		for len(counts) < len(t.Items[i].Choices) {
			counts = append(counts, 0)
		}
		counts[t.Items[i].Label]++
	}
	return counts
}

// Subset returns a task with the items at the given indices, in that order.
// The note records the subset size.
func (t *Task) Subset(idx []int) *Task {
	items := make([]Item, len(idx))
	for k, i := range idx {
		items[k] = t.Items[i]
	}
	return &Task{Name: t.Name, Items: items, Source: t.Source,
		Note: joinNote(t.Note, fmt.Sprintf("subset of %d of %d items", len(idx), len(t.Items)))}
}

// Split divides the task in two, deterministically for a given seed: a gets
// round(fraction·Len()) items drawn by a seeded shuffle, b the rest; both keep
// the original item order. It panics unless 0 ≤ fraction ≤ 1. Notes record the
// fraction and seed.
func (t *Task) Split(fraction float64, seed uint64) (a, b *Task) {
	if !(fraction >= 0 && fraction <= 1) {
		panic(fmt.Sprintf("task: Split fraction %v not in [0,1]", fraction))
	}
	n := len(t.Items)
	na := int(fraction*float64(n) + 0.5)
	if na > n {
		na = n
	}
	r := newRNG(seed, streamSplit)
	perm := r.perm(n)
	inA := make([]bool, n)
	for _, i := range perm[:na] {
		inA[i] = true
	}
	ia := make([]int, 0, na)
	ib := make([]int, 0, n-na)
	for i := 0; i < n; i++ {
		if inA[i] {
			ia = append(ia, i)
		} else {
			ib = append(ib, i)
		}
	}
	mk := func(idx []int, which string) *Task {
		items := make([]Item, len(idx))
		for k, i := range idx {
			items[k] = t.Items[i]
		}
		return &Task{Name: t.Name, Items: items, Source: t.Source,
			Note: joinNote(t.Note, fmt.Sprintf("%s part of a seeded split (fraction %g, seed %d): %d of %d items",
				which, fraction, seed, len(idx), n))}
	}
	return mk(ia, "first"), mk(ib, "second")
}

func joinNote(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
