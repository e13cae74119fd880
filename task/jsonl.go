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

// jsonlRecord is any line of a task file: a multiple-choice question, or
// a completion record in one of three shapes (prompt/completion;
// Alpaca/Self-Instruct instruction/input/output; chat messages).
type jsonlRecord struct {
	ID       *string         `json:"id"`
	Context  *string         `json:"context"`
	Question *string         `json:"question"`
	Choices  []string        `json:"choices"`
	Answer   json.RawMessage `json:"answer"`
	Split    *string         `json:"split"`

	Prompt      *string       `json:"prompt"`
	Completion  *string       `json:"completion"`
	Instruction *string       `json:"instruction"`
	Input       *string       `json:"input"`
	Output      *string       `json:"output"`
	Messages    []chatMessage `json:"messages"`
	// Self-Instruct's seed tasks: one instruction, several instances.
	Instances []struct {
		Input  *string `json:"input"`
		Output *string `json:"output"`
	} `json:"instances"`
	Name             *string `json:"name"`
	IsClassification *bool   `json:"is_classification"`
}

type chatMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// completionShape names a completion record's shape, "" for a
// multiple-choice question.
func (r *jsonlRecord) completionShape() string {
	switch {
	case r.Prompt != nil || r.Completion != nil:
		return "prompt/completion"
	case r.Instances != nil:
		return "self-instruct"
	case r.Instruction != nil || r.Output != nil:
		return "instruction/output"
	case r.Messages != nil:
		return "messages"
	}
	return ""
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
	kind, kindLine := "", 0
	err = jsonLines(path, data, func(ln int, r *jsonlRecord) error {
		shape := r.completionShape()
		k := "multiple-choice"
		if shape != "" {
			k = "completion"
		}
		if kind == "" {
			kind, kindLine = k, ln
		} else if k != kind {
			return fmt.Errorf("a %s record in a file of %s records (line %d): one kind a file", k, kind, kindLine)
		}
		var items []Item
		var split string
		var err error
		switch shape {
		case "":
			var it Item
			it, split, err = mcItem(ln, r)
			items = []Item{it}
		case "self-instruct":
			items, split, err = selfInstructItems(ln, r)
		default:
			var it Item
			it, split, err = completionItem(ln, r, shape)
			items = []Item{it}
		}
		if err != nil {
			return err
		}
		for _, it := range items {
			if first, dup := seen[it.ID]; dup {
				return fmt.Errorf("id %q repeats line %d's", it.ID, first)
			}
			seen[it.ID] = ln
		}
		if split == "" {
			all.Items = append(all.Items, items...)
			return nil
		}
		explicit++
		t := byName[split]
		if t == nil {
			t = &Task{Name: name, Source: path}
			byName[split] = t
			order = append(order, split)
		}
		t.Items = append(t.Items, items...)
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

// recordID is a record's id, or its line number.
func recordID(ln int, r *jsonlRecord) (string, error) {
	if r.ID == nil {
		return fmt.Sprint(ln), nil
	}
	if blank(*r.ID) {
		return "", errors.New(`field "id" is empty`)
	}
	return *r.ID, nil
}

// recordSplit checks a record's split field.
func recordSplit(r *jsonlRecord) (string, error) {
	if r.Split == nil {
		return "", nil
	}
	switch *r.Split {
	case "train", "validation", "test":
		return *r.Split, nil
	}
	return "", fmt.Errorf(`field "split" is %q, want train, validation or test`, *r.Split)
}

// Alpaca's prompt template (Taori et al. 2023), used by FlowerTune's
// general-NLP instruction tuning.
const (
	alpacaWithInput = "Below is an instruction that describes a task, paired with an input that provides further context. " +
		"Write a response that appropriately completes the request.\n\n### Instruction:\n%s\n\n### Input:\n%s\n\n### Response:"
	alpacaNoInput = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
		"### Instruction:\n%s\n\n### Response:"
)

// completionItem checks one completion record and builds its item: the
// prompt as Context, the completion as its one choice.
func completionItem(ln int, r *jsonlRecord, shape string) (Item, string, error) {
	id, err := recordID(ln, r)
	if err != nil {
		return Item{}, "", err
	}
	split, err := recordSplit(r)
	if err != nil {
		return Item{}, "", err
	}
	need := func(name string, v *string) (string, error) {
		if v == nil {
			return "", fmt.Errorf("missing field %q (a %s record)", name, shape)
		}
		if blank(*v) {
			return "", fmt.Errorf("field %q is empty", name)
		}
		return *v, nil
	}
	var prompt, completion string
	switch shape {
	case "prompt/completion":
		if prompt, err = need("prompt", r.Prompt); err != nil {
			return Item{}, "", err
		}
		if completion, err = need("completion", r.Completion); err != nil {
			return Item{}, "", err
		}
	case "instruction/output":
		instr, err := need("instruction", r.Instruction)
		if err != nil {
			return Item{}, "", err
		}
		if completion, err = need("output", r.Output); err != nil {
			return Item{}, "", err
		}
		prompt = fmt.Sprintf(alpacaNoInput, instr)
		if r.Input != nil && !blank(*r.Input) {
			prompt = fmt.Sprintf(alpacaWithInput, instr, *r.Input)
		}
	case "messages":
		if len(r.Messages) < 2 {
			return Item{}, "", fmt.Errorf(`field "messages" has %d messages, want at least a user's and the assistant's reply`, len(r.Messages))
		}
		var b strings.Builder
		for i, m := range r.Messages {
			switch {
			case m.Role != "system" && m.Role != "user" && m.Role != "assistant":
				return Item{}, "", fmt.Errorf(`field "messages": message %d has role %q, want system, user or assistant`, i, m.Role)
			case blank(m.Content):
				return Item{}, "", fmt.Errorf(`field "messages": message %d is empty`, i)
			}
			if i == len(r.Messages)-1 {
				if m.Role != "assistant" {
					return Item{}, "", fmt.Errorf(`field "messages": the last message is the %s's, want the assistant's (the completion)`, m.Role)
				}
				completion = m.Content
				break
			}
			fmt.Fprintf(&b, "### %s:\n%s\n\n", strings.ToUpper(m.Role[:1])+m.Role[1:], m.Content)
		}
		prompt = b.String() + "### Assistant:"
	}
	it := Item{ID: id, Context: prompt, Choices: []string{completion}, Completion: true, Query: prompt}
	if err := it.Validate(); err != nil {
		return Item{}, "", err
	}
	return it, split, nil
}

// selfInstructItems turns one of Self-Instruct's seed tasks ({id, name,
// instruction, instances: [{input, output}], is_classification}) into one
// completion item per instance, in Alpaca's template.
func selfInstructItems(ln int, r *jsonlRecord) ([]Item, string, error) {
	id, err := recordID(ln, r)
	if err != nil {
		return nil, "", err
	}
	split, err := recordSplit(r)
	if err != nil {
		return nil, "", err
	}
	if r.Instruction == nil || blank(*r.Instruction) {
		return nil, "", errors.New(`missing or empty field "instruction" (a self-instruct record)`)
	}
	if len(r.Instances) == 0 {
		return nil, "", errors.New(`field "instances" is empty`)
	}
	var items []Item
	for i, in := range r.Instances {
		if in.Output == nil || blank(*in.Output) {
			return nil, "", fmt.Errorf(`field "instances": instance %d has no output`, i)
		}
		prompt := fmt.Sprintf(alpacaNoInput, *r.Instruction)
		if in.Input != nil && !blank(*in.Input) {
			prompt = fmt.Sprintf(alpacaWithInput, *r.Instruction, *in.Input)
		}
		it := Item{ID: fmt.Sprintf("%s/%d", id, i), Context: prompt, Choices: []string{*in.Output}, Completion: true, Query: *r.Instruction}
		if err := it.Validate(); err != nil {
			return nil, "", fmt.Errorf(`field "instances": instance %d: %w`, i, err)
		}
		items = append(items, it)
	}
	return items, split, nil
}

// mcItem checks one multiple-choice record and builds its item.
func mcItem(ln int, r *jsonlRecord) (Item, string, error) {
	id, err := recordID(ln, r)
	if err != nil {
		return Item{}, "", err
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
	split, err := recordSplit(r)
	if err != nil {
		return Item{}, "", err
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
