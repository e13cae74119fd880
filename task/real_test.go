package task

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/kronfed/kronfed/internal/sharedtest"
)

// dataDir returns ../shared/data (skipping outside CI when it is missing).
func dataDir(t *testing.T) string {
	t.Helper()
	return sharedtest.Path(t, "data")
}

var (
	hellaswagOnce sync.Once
	hellaswagTask *Task
	hellaswagErr  error
)

// loadHellaSwag decompresses the 10,042-example file once for all tests.
func loadHellaSwag(t *testing.T) *Task {
	t.Helper()
	path := filepath.Join(dataDir(t), "hellaswag", "hellaswag_val_full.txt.bz2")
	hellaswagOnce.Do(func() { hellaswagTask, hellaswagErr = LoadHellaSwagText(path) })
	if hellaswagErr != nil {
		t.Fatal(hellaswagErr)
	}
	return hellaswagTask
}

func mustLoad(t *testing.T, load func() (*Task, error), want int) *Task {
	t.Helper()
	task, err := load()
	if err != nil {
		t.Fatal(err)
	}
	if task.Len() != want {
		t.Fatalf("%s: %d items, want %d", task.Source, task.Len(), want)
	}
	if err := task.Validate(); err != nil {
		t.Fatal(err)
	}
	return task
}

func findItem(t *testing.T, task *Task, id string) *Item {
	t.Helper()
	for i := range task.Items {
		if task.Items[i].ID == id {
			return &task.Items[i]
		}
	}
	t.Fatalf("%s: no item %q", task.Source, id)
	return nil
}

func checkItem(t *testing.T, got *Item, want Item) {
	t.Helper()
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("item %s:\n got %#v\nwant %#v", want.ID, *got, want)
	}
}

func TestRealCounts(t *testing.T) {
	d := dataDir(t)
	p := func(elem ...string) string { return filepath.Join(append([]string{d}, elem...)...) }
	mustLoad(t, func() (*Task, error) { return LoadARC(p("arc-easy", "train.json")) }, 2251)
	mustLoad(t, func() (*Task, error) { return LoadARC(p("arc-easy", "validation.json")) }, 570)
	mustLoad(t, func() (*Task, error) { return LoadARC(p("arc-challenge", "ARC-Challenge_train.jsonl")) }, 1119)
	mustLoad(t, func() (*Task, error) { return LoadARC(p("arc-challenge", "ARC-Challenge_validation.jsonl")) }, 299)
	mustLoad(t, func() (*Task, error) { return LoadPIQA(p("piqa", "valid.jsonl"), p("piqa", "valid-labels.lst")) }, 1838)
	for name, n := range map[string]int{"train_xs": 160, "train_s": 640, "train_m": 2558, "dev": 1267} {
		mustLoad(t, func() (*Task, error) { return LoadWinoGrande(p("winogrande", name+".jsonl")) }, n)
	}
	h := loadHellaSwag(t)
	if h.Len() != 10042 {
		t.Fatalf("hellaswag: %d items, want 10042", h.Len())
	}
	if err := h.Validate(); err != nil {
		t.Fatal(err)
	}
}

// Spot checks: one item per dataset, copied by hand from the files, in the
// lm-eval-harness prompt format (see the package documentation for sources).
func TestRealSpotChecks(t *testing.T) {
	d := dataDir(t)
	p := func(elem ...string) string { return filepath.Join(append([]string{d}, elem...)...) }

	easy := mustLoad(t, func() (*Task, error) { return LoadARC(p("arc-easy", "train.json")) }, 2251)
	// arc_easy: "Question: {{question}}\nAnswer:", choices.text, label index of answerKey.
	checkItem(t, &easy.Items[0], Item{
		ID:      "Mercury_7220990",
		Context: "Question: Which factor will most likely cause a person to develop a fever?\nAnswer:",
		Choices: []string{"a leg muscle relaxing after exercise", "a bacterial population in the bloodstream",
			"several viral particles on the skin", "carbohydrates being digested in the stomach"},
		Label: 1,
		Query: "Which factor will most likely cause a person to develop a fever?",
	})
	if got := easy.Items[0].Continuation(1); got != " a bacterial population in the bloodstream" {
		t.Errorf("continuation %q", got)
	}
	// Numeric labels "1".."4" with answerKey "3".
	checkItem(t, findItem(t, easy, "NYSEDREGENTS_2006_8_10"), Item{
		ID:      "NYSEDREGENTS_2006_8_10",
		Context: "Question: Rocks are classified as igneous, metamorphic, or sedimentary according to\nAnswer:",
		Choices: []string{"their color", "their shape", "how they formed", "the minerals they contain"},
		Label:   2,
		Query:   "Rocks are classified as igneous, metamorphic, or sedimentary according to",
	})
	// Five choices A..E, and three choices.
	if it := findItem(t, easy, "TIMSS_2003_8_pg24"); len(it.Choices) != 5 || it.Label != 3 || it.Choices[4] != "veins" {
		t.Errorf("TIMSS_2003_8_pg24: %#v", it)
	}
	if it := findItem(t, easy, "WASL_2003_5_9"); len(it.Choices) != 3 || it.Label != 0 || it.Choices[0] != "A rubber band that is being stretched" {
		t.Errorf("WASL_2003_5_9: %#v", it)
	}

	ch := mustLoad(t, func() (*Task, error) { return LoadARC(p("arc-challenge", "ARC-Challenge_validation.jsonl")) }, 299)
	checkItem(t, &ch.Items[298], Item{
		ID:      "Mercury_7082145",
		Context: "Question: How should a line graph be used to display distance and time data for a moving object?\nAnswer:",
		Choices: []string{
			"The y-axis should be labeled as time, which is the dependent variable.",
			"The y-axis should be labeled as distance, which is the independent variable.",
			"The x-axis should be labeled as distance, which is the dependent variable.",
			"The x-axis should be labeled as time, which is the independent variable."},
		Label: 3,
		Query: "How should a line graph be used to display distance and time data for a moving object?",
	})

	// piqa: "Question: {{goal}}\nAnswer:", [sol1, sol2], label from the .lst.
	pq := mustLoad(t, func() (*Task, error) { return LoadPIQA(p("piqa", "valid.jsonl"), p("piqa", "valid-labels.lst")) }, 1838)
	checkItem(t, &pq.Items[1837], Item{
		ID:      "piqa-1837",
		Context: "Question: Where can I buy a tennis ball\nAnswer:",
		Choices: []string{"You can purchase a tennis ball at any sports store", "You can purchase a tennis racket at any sports store"},
		Label:   0,
		Query:   "Where can I buy a tennis ball",
	})
	if pq.Items[1].Choices[1] != "finish, woodgrain with  bobby pin " {
		t.Errorf("piqa choices must be kept verbatim, got %q", pq.Items[1].Choices[1])
	}

	// winogrande: contexts sentence[:i]+option, target sentence[i+1:].strip().
	wg := mustLoad(t, func() (*Task, error) { return LoadWinoGrande(p("winogrande", "train_xs.jsonl")) }, 160)
	s := "Kyle doesn't wear leg warmers to bed, while Logan almost always does. _ is more likely to live in a colder climate."
	checkItem(t, &wg.Items[4], Item{
		ID: "3D5G8J4N5CI2K40F4RZLF9OG2CKVTH-2",
		Contexts: []string{
			"Kyle doesn't wear leg warmers to bed, while Logan almost always does. Kyle",
			"Kyle doesn't wear leg warmers to bed, while Logan almost always does. Logan"},
		Choices: []string{"is more likely to live in a colder climate.", "is more likely to live in a colder climate."},
		Label:   1,
		Query:   s,
	})
	if got := wg.Items[4].ContextFor(1) + wg.Items[4].Continuation(1); got != "Kyle doesn't wear leg warmers to bed, while Logan almost always does. Logan is more likely to live in a colder climate." {
		t.Errorf("winogrande request %q", got)
	}

	// hellaswag text form: context line, endings verbatim.
	h := loadHellaSwag(t)
	checkItem(t, &h.Items[0], Item{
		ID:      "hellaswag-0",
		Context: "Roof shingle removal: A man is sitting on a roof. he",
		Choices: []string{"is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
			"is holding a rubik's cube.", "starts pulling up roofing on a roof."},
		Label: 3,
		Query: "Roof shingle removal: A man is sitting on a roof. he",
	})
	last := &h.Items[10041]
	if last.ID != "hellaswag-10041" || last.Label != 2 ||
		last.Choices[3] != "Ask your teen if they have black tights (with stripper straps) or baggy jeans (without strippers straps). The more comfortably you can be around your teenager, the better." {
		t.Errorf("last hellaswag item %#v", last)
	}
}

func TestLoadRegistry(t *testing.T) {
	d := dataDir(t)
	want := map[string][3]int{ // train, validation, test (-1: nil)
		"arc-easy":      {1801, 570, 450},
		"arc-challenge": {895, 299, 224},
		"piqa":          {1470, 368, -1},
		"hellaswag":     {8034, 2008, -1},
		"winogrande":    {2558, 1267, -1},
	}
	for _, name := range Names() {
		s, err := Load(name, d)
		if err != nil {
			t.Fatal(err)
		}
		w := want[name]
		got := [3]int{s.Train.Len(), s.Validation.Len(), -1}
		if s.Test != nil {
			got[2] = s.Test.Len()
		}
		if got != w {
			t.Errorf("%s: sizes %v, want %v", name, got, w)
		}
		if s.Note == "" || s.Train.Note == "" || s.Validation.Note == "" {
			t.Errorf("%s: missing notes", name)
		}
		for _, part := range []*Task{s.Train, s.Validation, s.Test} {
			if part != nil && part.Name != name {
				t.Errorf("%s: part named %q", name, part.Name)
			}
		}
		// Train and the held-back part never share an item.
		other := s.Test
		if other == nil && name != "winogrande" {
			other = s.Validation
		}
		if other != nil {
			seen := map[string]bool{}
			for _, it := range s.Train.Items {
				seen[it.ID] = true
			}
			for _, it := range other.Items {
				if seen[it.ID] {
					t.Errorf("%s: item %s in two splits", name, it.ID)
				}
			}
		}
	}
	// Deterministic: a second load gives the same split.
	a, _ := Load("piqa", d)
	b, _ := Load("piqa", d)
	if !reflect.DeepEqual(a, b) {
		t.Error("piqa split differs between loads")
	}
	if _, err := Load("mmlu", d); err == nil {
		t.Error("unknown dataset accepted")
	}
}

// TestARCUsesPublishedTestFile: with a test file beside train and
// validation, ARC's Test is that file and Train the whole train file; the
// hold-out is only the fallback.
func TestARCUsesPublishedTestFile(t *testing.T) {
	src := dataDir(t)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "arc-easy"), 0o755); err != nil {
		t.Fatal(err)
	}
	for from, to := range map[string]string{"train.json": "train.json", "validation.json": "validation.json"} {
		b, err := os.ReadFile(filepath.Join(src, "arc-easy", from))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "arc-easy", to), b, 0o644)
	}
	held, err := Load("arc-easy", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(held.Note, "no test file") {
		t.Errorf("fallback note: %s", held.Note)
	}
	// The validation file stands in for a published test file here.
	b, _ := os.ReadFile(filepath.Join(src, "arc-easy", "validation.json"))
	os.WriteFile(filepath.Join(dir, "arc-easy", "test.json"), b, 0o644)
	s, err := Load("arc-easy", dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.Test.Len() != s.Validation.Len() || s.Train.Len() != held.Train.Len()+held.Test.Len() || !strings.Contains(s.Note, "as published") {
		t.Fatalf("with a test file: train %d, validation %d, test %d; note %s", s.Train.Len(), s.Validation.Len(), s.Test.Len(), s.Note)
	}
}
