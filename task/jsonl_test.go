package task

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeJSONL(t *testing.T, lines ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "mine.jsonl")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadJSONL reads a file without split fields (split 80/10/10, said in
// the note) and one that names its splits; items carry ARC's prompt format.
func TestLoadJSONL(t *testing.T) {
	var lines []string
	for i := range 20 {
		lines = append(lines, fmt.Sprintf(`{"question": "q%d?", "choices": ["a%d", "b%d", "c%d"], "answer": %d}`, i, i, i, i, i%3))
	}
	lines[0] = `{"id": "first", "context": "A passage.", "question": "q0?", "choices": ["a0", "b0", "c0"], "answer": 0}`
	s, err := LoadJSONL(writeJSONL(t, lines...), 7)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "mine" || len(s.Train.Items) != 16 || len(s.Validation.Items) != 2 || len(s.Test.Items) != 2 || !strings.Contains(s.Note, "80/10/10") {
		t.Fatalf("splits %s: %d/%d/%d, note %q", s.Name, len(s.Train.Items), len(s.Validation.Items), len(s.Test.Items), s.Note)
	}
	var first *Item
	for _, tk := range []*Task{s.Train, s.Validation, s.Test} {
		for i := range tk.Items {
			if tk.Items[i].ID == "first" {
				first = &tk.Items[i]
			}
		}
	}
	if first == nil || first.Context != "A passage.\n\nQuestion: q0?\nAnswer:" || first.Label != 0 || first.Choices[2] != "c0" {
		t.Fatalf("first item: %+v", first)
	}
	s, err = LoadJSONL(writeJSONL(t,
		`{"question": "a?", "choices": ["x", "y"], "answer": 1, "split": "train"}`,
		`{"question": "b?", "choices": ["x", "y"], "answer": 0, "split": "train"}`,
		`{"question": "c?", "choices": ["x", "y"], "answer": 0, "split": "validation"}`,
		`{"question": "d?", "choices": ["x", "y"], "answer": 1, "split": "test"}`), 1)
	if err != nil || len(s.Train.Items) != 2 || len(s.Validation.Items) != 1 || len(s.Test.Items) != 1 {
		t.Fatalf("explicit splits: %v %+v", err, s)
	}
}

// TestLoadJSONLBadInput: every bad line is refused naming the file, the
// line and the field, before anything trains.
func TestLoadJSONLBadInput(t *testing.T) {
	ok := `{"question": "q?", "choices": ["a", "b"], "answer": 0}`
	for want, bad := range map[string]string{
		"malformed JSON":                             `{"question": "q?", "choices": ["a", "b"], "answer": 0`,
		`missing field "question"`:                   `{"choices": ["a", "b"], "answer": 0}`,
		`missing field "answer"`:                     `{"question": "q?", "choices": ["a", "b"]}`,
		`field "answer" is 2, outside the 2 choices`: `{"question": "q?", "choices": ["a", "b"], "answer": 2}`,
		`field "answer" must be the 0-based index`:   `{"question": "q?", "choices": ["a", "b"], "answer": "a"}`,
		`field "choices": entry 1 is empty`:          `{"question": "q?", "choices": ["a", " "], "answer": 0}`,
		`field "choices" has 1 entries`:              `{"question": "q?", "choices": ["a"], "answer": 0}`,
		`field "question" is empty`:                  `{"question": "", "choices": ["a", "b"], "answer": 0}`,
		`field "split" is "dev"`:                     `{"question": "q?", "choices": ["a", "b"], "answer": 0, "split": "dev"}`,
	} {
		p := writeJSONL(t, ok, ok, bad, ok)
		_, err := LoadJSONL(p, 1)
		if err == nil || !strings.Contains(err.Error(), p+":3:") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %s:3: … %s", bad, err, p, want)
		}
	}
	p := writeJSONL(t, `{"id": "x", "question": "q?", "choices": ["a", "b"], "answer": 0}`, `{"id": "x", "question": "r?", "choices": ["a", "b"], "answer": 1}`, ok)
	if _, err := LoadJSONL(p, 1); err == nil || !strings.Contains(err.Error(), `id "x" repeats line 1`) {
		t.Errorf("repeated id: %v", err)
	}
}

// TestLoadJSONLCompletions reads the three completion shapes into
// completion items (prompt as context, the completion its one choice).
func TestLoadJSONLCompletions(t *testing.T) {
	s, err := LoadJSONL(writeJSONL(t,
		`{"prompt": "Say hi:", "completion": "hi", "split": "train"}`,
		`{"instruction": "Add the numbers.", "input": "2 and 3", "output": "5", "split": "train"}`,
		`{"instruction": "Name a colour.", "output": "red", "split": "validation"}`,
		`{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}, {"role": "assistant", "content": "Paris."}], "split": "test"}`), 1)
	if err != nil {
		t.Fatal(err)
	}
	tr, va, te := s.Train.Items, s.Validation.Items, s.Test.Items
	if len(tr) != 2 || len(va) != 1 || len(te) != 1 {
		t.Fatalf("splits %d/%d/%d", len(tr), len(va), len(te))
	}
	for _, it := range append(append(append([]Item(nil), tr...), va...), te...) {
		if !it.Completion || len(it.Choices) != 1 || it.Validate() != nil {
			t.Errorf("item %s: %+v", it.ID, it)
		}
	}
	if tr[0].Context != "Say hi:" || tr[0].Choices[0] != "hi" {
		t.Errorf("prompt/completion: %+v", tr[0])
	}
	if !strings.Contains(tr[1].Context, "### Instruction:\nAdd the numbers.\n\n### Input:\n2 and 3\n\n### Response:") || tr[1].Choices[0] != "5" {
		t.Errorf("instruction with input: %q", tr[1].Context)
	}
	if strings.Contains(va[0].Context, "### Input:") || !strings.HasSuffix(va[0].Context, "### Response:") {
		t.Errorf("instruction without input: %q", va[0].Context)
	}
	if te[0].Context != "### System:\nBe brief.\n\n### User:\nCapital of France?\n\n### Assistant:" || te[0].Choices[0] != "Paris." {
		t.Errorf("messages: %q → %q", te[0].Context, te[0].Choices[0])
	}
	for want, bad := range map[string]string{
		`missing field "completion"`:                       `{"prompt": "p"}`,
		`field "output" is empty`:                          `{"instruction": "i", "output": " "}`,
		`the last message is the user's`:                   `{"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "u"}]}`,
		`role "bot"`:                                       `{"messages": [{"role": "user", "content": "u"}, {"role": "bot", "content": "b"}]}`,
		`a multiple-choice record in a file of completion`: `{"question": "q?", "choices": ["a", "b"], "answer": 0}`,
	} {
		p := writeJSONL(t, `{"prompt": "p", "completion": "c"}`, bad)
		if _, err := LoadJSONL(p, 1); err == nil || !strings.Contains(err.Error(), p+":2:") || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want line 2 and %q", bad, err, want)
		}
	}
}

// TestLoadSelfInstruct reads Self-Instruct's seed-task records (one
// instruction, several instances) as one completion item per instance;
// the real 175 seed tasks are read too when ../shared has them.
func TestLoadSelfInstruct(t *testing.T) {
	p := writeJSONL(t,
		`{"id": "seed_task_0", "name": "breakfast_suggestion", "instruction": "Is there anything I can eat for a breakfast that doesn't include eggs?", "instances": [{"input": "", "output": "Yes, oatmeal."}], "is_classification": false}`,
		`{"id": "seed_task_1", "name": "antonym", "instruction": "Give the antonym.", "instances": [{"input": "hot", "output": "cold"}, {"input": "up", "output": "down"}], "is_classification": false}`,
		`{"id": "seed_task_2", "name": "x", "instruction": "Say yes.", "instances": [{"input": "", "output": "yes"}], "is_classification": true}`)
	s, err := LoadJSONL(p, 1)
	if err != nil {
		t.Fatal(err)
	}
	all := append(append(append([]Item(nil), s.Train.Items...), s.Validation.Items...), s.Test.Items...)
	if len(all) != 4 {
		t.Fatalf("%d items, want one per instance (4)", len(all))
	}
	for _, it := range all {
		if !it.Completion || !strings.Contains(it.Context, "### Instruction:") {
			t.Errorf("%s: %+v", it.ID, it)
		}
		if it.ID == "seed_task_1/1" && (!strings.Contains(it.Context, "### Input:\nup") || it.Choices[0] != "down") {
			t.Errorf("instance 1 of the antonym task: %q → %q", it.Context, it.Choices[0])
		}
	}
	bad := writeJSONL(t, `{"id": "s", "instruction": "Do it.", "instances": [{"input": "x"}]}`)
	if _, err := LoadJSONL(bad, 1); err == nil || !strings.Contains(err.Error(), "instance 0 has no output") {
		t.Errorf("instance without output: %v", err)
	}
	real := filepath.Join("..", "..", "shared", "data", "self-instruct", "seed_tasks.jsonl")
	if d := os.Getenv("KRONFED_SHARED"); d != "" {
		real = filepath.Join(d, "data", "self-instruct", "seed_tasks.jsonl")
	}
	if _, err := os.Stat(real); err != nil {
		t.Logf("the real seed tasks are not here (%v): checked the format only", err)
		return
	}
	s, err = LoadJSONL(real, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.Train.Len() + s.Validation.Len() + s.Test.Len(); n < 175 {
		t.Errorf("the 175 seed tasks gave %d items", n)
	}
}
