package task

import (
	"compress/bzip2"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantErr checks that err is a *ParseError for file:line whose message
// contains want.
func wantErr(t *testing.T, err error, file string, line int, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s:%d: ...%s...", filepath.Base(file), line, want)
	}
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *ParseError", err)
	}
	if pe.File != file || pe.Line != line || !strings.Contains(err.Error(), want) {
		t.Errorf("error %q, want %s:%d and %q", err, file, line, want)
	}
	if !strings.HasPrefix(err.Error(), file) {
		t.Errorf("error %q does not start with the file name", err)
	}
}

const (
	arcLine1 = `{"id":"q1","question":"What is 1+1?","choices":{"text":["1","2","3"],"label":["A","B","C"]},"answerKey":"B"}`
	arcLine2 = `{"id":"q2","question":"Pick four.","choices":{"text":["four","five"],"label":["1","2"]},"answerKey":"1"}`
)

func TestARCReaders(t *testing.T) {
	jl := writeFile(t, "a.jsonl", arcLine1+"\r\n"+arcLine2+"\n\n")
	task, err := LoadARC(jl)
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{ID: "q1", Context: "Question: What is 1+1?\nAnswer:", Choices: []string{"1", "2", "3"}, Label: 1, Query: "What is 1+1?"},
		{ID: "q2", Context: "Question: Pick four.\nAnswer:", Choices: []string{"four", "five"}, Label: 0, Query: "Pick four."},
	}
	if !reflect.DeepEqual(task.Items, want) {
		t.Fatalf("got %#v", task.Items)
	}
	arr := writeFile(t, "a.json", "\xef\xbb\xbf[\n  "+arcLine1+",\n  "+arcLine2+"\n]\n")
	task2, err := LoadARC(arr)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(task2.Items, want) {
		t.Fatalf("array form: got %#v", task2.Items)
	}
}

func TestARCRejects(t *testing.T) {
	cases := []struct {
		name, content string
		line          int
		want          string
	}{
		{"malformed", arcLine1 + "\n" + `{"id":"q2","question":` + "\n", 2, "malformed JSON"},
		{"unknown key", arcLine1 + "\n" + strings.Replace(arcLine2, `"answerKey":"1"`, `"answerKey":"F"`, 1), 2, `unknown answerKey "F" (labels 1,2)`},
		{"empty choices", `{"id":"q","question":"x","choices":{"text":[],"label":[]},"answerKey":"A"}`, 1, "empty choices"},
		{"missing choices", `{"id":"q","question":"x","answerKey":"A"}`, 1, "missing choices"},
		{"one choice", `{"id":"q","question":"x","choices":{"text":["a"],"label":["A"]},"answerKey":"A"}`, 1, "need at least 2"},
		{"blank choice", `{"id":"q","question":"x","choices":{"text":["a"," "],"label":["A","B"]},"answerKey":"A"}`, 1, "choice 1 is empty"},
		{"label count", `{"id":"q","question":"x","choices":{"text":["a","b"],"label":["A"]},"answerKey":"A"}`, 1, "2 choice texts but 1 labels"},
		{"repeated label", `{"id":"q","question":"x","choices":{"text":["a","b"],"label":["A","A"]},"answerKey":"A"}`, 1, `label "A" repeated`},
		{"missing question", `{"id":"q","choices":{"text":["a","b"],"label":["A","B"]},"answerKey":"A"}`, 1, "missing question"},
		{"missing answer", `{"id":"q","question":"x","choices":{"text":["a","b"],"label":["A","B"]}}`, 1, "missing answerKey"},
		{"missing id", `{"question":"x","choices":{"text":["a","b"],"label":["A","B"]},"answerKey":"A"}`, 1, "missing id"},
		{"duplicate id", arcLine1 + "\n" + arcLine2 + "\n" + arcLine1 + "\n", 3, `duplicate id "q1" (first on line 1)`},
		{"blank line", arcLine1 + "\n\n" + arcLine2 + "\n", 2, "blank line"},
		{"not object", arcLine1 + "\n[1,2]\n", 2, "not a JSON object"},
		{"trailing junk", arcLine1 + " x\n", 1, "malformed JSON"},
		{"wrong type", `{"id":"q","question":3}`, 1, "malformed JSON"},
		{"empty file", "", 0, "empty file"},
		{"white space", " \n\n\t\n", 0, "empty file"},
		{"array malformed", "[\n" + arcLine1 + ",\n{\"id\": \n]", 3, "malformed JSON"},
		{"array bad item", "[\n  " + arcLine1 + ",\n\n  " + strings.Replace(arcLine2, `"answerKey":"1"`, `"answerKey":"3"`, 1) + "\n]", 4, `unknown answerKey "3"`},
		{"array of numbers", "[\n1,\n2]", 2, "not a JSON object"},
		{"empty array", "[ ]", 0, "no items"},
		{"data after array", "[" + arcLine1 + "] []", 1, "data after the JSON array"},
		{"unterminated array", "[" + arcLine1 + ",\n", 2, "malformed JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, "arc.jsonl", c.content)
			_, err := LoadARC(path)
			wantErr(t, err, path, c.line, c.want)
		})
	}
}

func TestPIQA(t *testing.T) {
	jl := `{"goal": "Open a jar.", "sol1": "Twist the lid.", "sol2": "Eat the lid."}` + "\n" +
		`{"goal": "Dry a shirt.", "sol1": "Put it in water.", "sol2": "Hang it in the sun."}` + "\n"
	path := writeFile(t, "valid.jsonl", jl)
	good := writeFile(t, "valid-labels.lst", "0\r\n1\n")
	task, err := LoadPIQA(path, good)
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{ID: "piqa-0", Context: "Question: Open a jar.\nAnswer:", Choices: []string{"Twist the lid.", "Eat the lid."}, Label: 0, Query: "Open a jar."},
		{ID: "piqa-1", Context: "Question: Dry a shirt.\nAnswer:", Choices: []string{"Put it in water.", "Hang it in the sun."}, Label: 1, Query: "Dry a shirt."},
	}
	if !reflect.DeepEqual(task.Items, want) {
		t.Fatalf("got %#v", task.Items)
	}

	few := writeFile(t, "few.lst", "0\n")
	_, err = LoadPIQA(path, few)
	wantErr(t, err, few, 2, "missing label: valid.jsonl has 2 items but 1 labels")

	many := writeFile(t, "many.lst", "0\n1\n1\n")
	_, err = LoadPIQA(path, many)
	wantErr(t, err, many, 3, "label without an item: valid.jsonl has 2 items")

	bad := writeFile(t, "bad.lst", "0\n2\n")
	_, err = LoadPIQA(path, bad)
	wantErr(t, err, bad, 2, `label "2" is not 0 or 1`)

	hole := writeFile(t, "hole.lst", "\n1\n")
	_, err = LoadPIQA(path, hole)
	wantErr(t, err, hole, 1, "blank line")

	empty := writeFile(t, "empty.lst", "")
	_, err = LoadPIQA(path, empty)
	wantErr(t, err, empty, 0, "empty file")

	noSol := writeFile(t, "nosol.jsonl", jl+`{"goal": "x", "sol1": "a", "sol2": ""}`+"\n")
	_, err = LoadPIQA(noSol, good)
	wantErr(t, err, noSol, 3, "missing or empty sol2")

	if _, err := LoadPIQA(filepath.Join(t.TempDir(), "absent.jsonl"), good); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestWinoGrande(t *testing.T) {
	good := `{"qID": "a-1", "sentence": "The cup fell off the table because _ was slippery.", "option1": "the cup", "option2": "the table", "answer": "2"}` + "\n" +
		`{"qID": "a-2", "sentence": "_ won.", "option1": "Ann", "option2": "Bob", "answer": "1"}` + "\n"
	path := writeFile(t, "dev.jsonl", good)
	task, err := LoadWinoGrande(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{ID: "a-1", Contexts: []string{"The cup fell off the table because the cup", "The cup fell off the table because the table"},
			Choices: []string{"was slippery.", "was slippery."}, Label: 1, Query: "The cup fell off the table because _ was slippery."},
		{ID: "a-2", Contexts: []string{"Ann", "Bob"}, Choices: []string{"won.", "won."}, Label: 0, Query: "_ won."},
	}
	if !reflect.DeepEqual(task.Items, want) {
		t.Fatalf("got %#v", task.Items)
	}
	it := &task.Items[0]
	if it.ContextFor(1) != "The cup fell off the table because the table" || it.Continuation(1) != " was slippery." {
		t.Errorf("request (%q, %q)", it.ContextFor(1), it.Continuation(1))
	}

	cases := []struct{ name, line, want string }{
		{"answer 3", `{"qID": "b", "sentence": "_ x", "option1": "a", "option2": "b", "answer": "3"}`, `answer "3" is not "1" or "2"`},
		{"unlabelled", `{"qID": "b", "sentence": "_ x", "option1": "a", "option2": "b", "answer": ""}`, "missing answer"},
		{"no answer", `{"qID": "b", "sentence": "_ x", "option1": "a", "option2": "b"}`, "missing answer"},
		{"no blank", `{"qID": "b", "sentence": "x y", "option1": "a", "option2": "b", "answer": "1"}`, `no "_" blank`},
		{"empty option", `{"qID": "b", "sentence": "_ x", "option1": "", "option2": "b", "answer": "1"}`, "missing option1"},
		{"duplicate", `{"qID": "a-1", "sentence": "_ x", "option1": "a", "option2": "b", "answer": "1"}`, `duplicate id "a-1"`},
		{"malformed", `{"qID": "b", "sentence": "_ x"`, "malformed JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, "wg.jsonl", good+c.line+"\n")
			_, err := LoadWinoGrande(p)
			wantErr(t, err, p, 3, c.want)
		})
	}
	p := writeFile(t, "wg.jsonl", "\n\n")
	_, err = LoadWinoGrande(p)
	wantErr(t, err, p, 0, "empty file")
}

const hsExample = "Roof shingle removal: A man is sitting on a roof. he\n3\n" +
	"is using wrap to wrap a pair of skis.\nis ripping level tiles off.\n" +
	"is holding a rubik's cube.\nstarts pulling up roofing on a roof.\n"

func TestHellaSwagText(t *testing.T) {
	path := writeFile(t, "hs.txt", hsExample+strings.Replace(hsExample, "\n3\n", "\n0\n", 1))
	task, err := LoadHellaSwagText(path)
	if err != nil {
		t.Fatal(err)
	}
	if task.Len() != 2 || task.Items[1].ID != "hellaswag-1" || task.Items[1].Label != 0 ||
		task.Items[0].Context != "Roof shingle removal: A man is sitting on a roof. he" ||
		task.Items[0].Continuation(3) != " starts pulling up roofing on a roof." {
		t.Fatalf("got %#v", task.Items)
	}

	cases := []struct {
		name, content string
		line          int
		want          string
	}{
		{"gold out of range", strings.Replace(hsExample, "\n3\n", "\n4\n", 1), 2, "gold index 4 out of range 0-3"},
		{"gold not a number", hsExample + strings.Replace(hsExample, "\n3\n", "\nx\n", 1), 8, `gold index "x" is not a number`},
		{"negative gold", strings.Replace(hsExample, "\n3\n", "\n-1\n", 1), 2, "not a number"},
		{"incomplete", hsExample + "context only\n2\n", 7, "incomplete example: 2 of 6 lines"},
		{"empty ending", strings.Replace(hsExample, "is ripping level tiles off.", "  ", 1), 4, "empty ending 1"},
		{"empty context", strings.Replace(hsExample, "Roof shingle removal: A man is sitting on a roof. he", "", 1), 1, "empty context"},
		{"empty file", "\n", 0, "empty file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, "hs.txt", c.content)
			_, err := LoadHellaSwagText(p)
			wantErr(t, err, p, c.line, c.want)
		})
	}
}

// A bzip2 stream the tests can write themselves would need an encoder, which
// the standard library lacks; check instead that a corrupt .bz2 is an error
// naming the file (the real .bz2 is read in TestRealCounts).
func TestHellaSwagBadBzip2(t *testing.T) {
	p := writeFile(t, "hs.txt.bz2", "BZh9 not really bzip2")
	_, err := LoadHellaSwagText(p)
	var se bzip2.StructuralError
	if err == nil || !strings.Contains(err.Error(), p) || !errors.As(err, &se) {
		t.Errorf("corrupt bzip2: %v", err)
	}
}

// Expected values computed with lm-eval-harness's hellaswag utils.preprocess
// and process_docs (Python) on these hand-written lines.
func TestHellaSwagJSONL(t *testing.T) {
	lines := []string{
		`{"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he", "ctx": "A man is sitting on a roof. he", "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.", "is holding a rubik's cube.", "starts pulling up roofing on a roof."], "label": 3, "split": "val"}`,
		`{"ind": 7, "activity_label": "Home and Garden", "ctx_a": "[header] How to clean a grill [title] Heat the grill.  [step] Turn the burners on high.", "ctx_b": "", "endings": ["[substeps] Wait ten minutes. ", " Scrub   the grates [title] Use a brush.", "Pour water [on it] now", "Leave it [sic"], "label": "1"}`,
		`{"ind": 9, "activity_label": "Fixing bicycle", "ctx_a": "\tA boy shows a wheel.", "ctx_b": "THE BOY then", "endings": ["a", "b [x] c", "d", "e"], "label": 0}`,
	}
	path := writeFile(t, "hs.jsonl", strings.Join(lines, "\n")+"\n")
	task, err := LoadHellaSwagJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Item{
		{ID: "24", Context: "Roof shingle removal: A man is sitting on a roof. He",
			Choices: []string{"is using wrap to wrap a pair of skis.", "is ripping level tiles off.", "is holding a rubik's cube.", "starts pulling up roofing on a roof."},
			Label:   3},
		{ID: "7", Context: "Home and Garden: How to clean a grill. Heat the grill.  Turn the burners on high.",
			Choices: []string{" Wait ten minutes.", "Scrub  the grates. Use a brush.", "Pour water now", "Leave it [sic"},
			Label:   1},
		{ID: "9", Context: "Fixing bicycle: \tA boy shows a wheel. The boy then",
			Choices: []string{"a", "b c", "d", "e"}, Label: 0},
	}
	for i := range want {
		want[i].Query = want[i].Context
	}
	if !reflect.DeepEqual(task.Items, want) {
		t.Fatalf("got  %#v\nwant %#v", task.Items, want)
	}

	rec := func(label, endings string) string {
		return `{"ind": 1, "activity_label": "A", "ctx_a": "b.", "ctx_b": "c", "endings": ` + endings + `, "label": ` + label + `}`
	}
	four := `["w", "x", "y", "z"]`
	cases := []struct{ name, line, want string }{
		{"label out of range", rec("4", four), "label 4 out of range 0-3"},
		{"label string out of range", rec(`"-1"`, four), "label -1 out of range"},
		{"unlabelled", rec(`""`, four), "missing label"},
		{"no label", `{"ind": 1, "activity_label": "A", "ctx_a": "b.", "ctx_b": "c", "endings": ["w", "x", "y", "z"]}`, "missing label"},
		{"label not integer", rec("1.5", four), "not an integer"},
		{"three endings", rec("0", `["w", "x", "y"]`), "3 endings, want 4"},
		{"no endings", rec("0", `[]`), "empty endings"},
		{"tag-only ending", rec("0", `["w", "[header]", "y", "z"]`), "ending 1 is empty after preprocessing"},
		{"missing ctx_b", `{"ind": 1, "activity_label": "A", "ctx_a": "b.", "endings": ["w", "x", "y", "z"], "label": 0}`, "missing ctx_b"},
		{"bad ind", `{"ind": [1], "activity_label": "A", "ctx_a": "b.", "ctx_b": "", "endings": ["w", "x", "y", "z"], "label": 0}`, "ind [1] is not a number"},
		{"duplicate ind", strings.Replace(rec("0", four), `"ind": 1`, `"ind": 24`, 1), `duplicate id "24"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, "hs.jsonl", lines[0]+"\n"+lines[1]+"\n"+c.line+"\n")
			_, err := LoadHellaSwagJSONL(p)
			wantErr(t, err, p, 3, c.want)
		})
	}
}

func TestHellaSwagPreprocess(t *testing.T) {
	cases := map[string]string{
		"  a [title] b  ":           "a. b",
		"x [step] y":                "x y",
		"a    b":                    "a  b", // one pass, like str.replace
		"[a] [b]c":                  " c",
		"keep [unclosed":            "keep [unclosed",
		"multi [line\nspan] stays":  "multi [line\nspan] stays",
		"\x1c\u00a0trim\u2003\x1f ": "trim",
	}
	for in, want := range cases {
		if got := HellaSwagPreprocess(in); got != want {
			t.Errorf("HellaSwagPreprocess(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"": "", "he": "He", "tHE mAN": "The man", "1st place": "1st place", "éCOLE": "École"} {
		if got := PyCapitalize(in); got != want {
			t.Errorf("PyCapitalize(%q) = %q, want %q", in, got, want)
		}
	}
}
