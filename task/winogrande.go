package task

import (
	"errors"
	"fmt"
	"strings"
)

type winograndeRecord struct {
	QID      string  `json:"qID"`
	Sentence *string `json:"sentence"`
	Option1  *string `json:"option1"`
	Option2  *string `json:"option2"`
	Answer   *string `json:"answer"`
}

// LoadWinoGrande reads WinoGrande JSON lines {qID, sentence, option1, option2,
// answer:"1"|"2"} for partial scoring, as lm-evaluation-harness does: with i
// the byte index of the first "_" in sentence, Contexts[k] = sentence[:i] +
// option(k+1) and both Choices are strings.TrimSpace(sentence[i+1:]) (scored as
// " " + that text). Context is empty; Query holds the sentence. Unlabelled
// files (test.jsonl) are rejected.
func LoadWinoGrande(path string) (*Task, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	items, err := parseWinoGrande(path, data)
	if err != nil {
		return nil, err
	}
	return &Task{Name: "winogrande", Items: items, Source: path}, nil
}

func parseWinoGrande(file string, data []byte) ([]Item, error) {
	var items []Item
	seen := ids{}
	err := jsonLines(file, data, func(ln int, r *winograndeRecord) error {
		switch {
		case blank(r.QID):
			return errors.New("missing qID")
		case r.Sentence == nil || blank(*r.Sentence):
			return fmt.Errorf("item %s: missing sentence", r.QID)
		case r.Option1 == nil || blank(*r.Option1):
			return fmt.Errorf("item %s: missing option1", r.QID)
		case r.Option2 == nil || blank(*r.Option2):
			return fmt.Errorf("item %s: missing option2", r.QID)
		case r.Answer == nil || *r.Answer == "":
			return fmt.Errorf("item %s: missing answer (unlabelled file?)", r.QID)
		}
		var label int
		switch *r.Answer {
		case "1":
			label = 0
		case "2":
			label = 1
		default:
			return fmt.Errorf("item %s: answer %q is not \"1\" or \"2\"", r.QID, *r.Answer)
		}
		s := *r.Sentence
		i := strings.Index(s, "_")
		if i < 0 {
			return fmt.Errorf("item %s: sentence has no \"_\" blank", r.QID)
		}
		target := strings.TrimSpace(s[i+1:])
		if err := seen.add(r.QID, ln); err != nil {
			return err
		}
		items = append(items, Item{
			ID:       r.QID,
			Contexts: []string{s[:i] + *r.Option1, s[:i] + *r.Option2},
			Choices:  []string{target, target},
			Label:    label,
			Query:    s,
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, perr(file, 0, "no items")
	}
	return items, nil
}
