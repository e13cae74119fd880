package task

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

type arcRecord struct {
	ID       string  `json:"id"`
	Question *string `json:"question"`
	Choices  *struct {
		Text  []string `json:"text"`
		Label []string `json:"label"`
	} `json:"choices"`
	AnswerKey *string `json:"answerKey"`
}

// LoadARC reads an ARC file (ARC-Easy or ARC-Challenge, Hugging Face ai2_arc
// export): either one JSON array or JSON lines of
// {id, question, choices:{text[], label[]}, answerKey}, told apart by the first
// non-space byte. Context is "Question: {question}\nAnswer:", Choices the
// choice texts, Label the index of answerKey among choices.label.
func LoadARC(path string) (*Task, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	items, err := parseARC(path, data)
	if err != nil {
		return nil, err
	}
	return &Task{Name: "arc", Items: items, Source: path}, nil
}

func parseARC(file string, data []byte) ([]Item, error) {
	var items []Item
	seen := ids{}
	each := func(ln int, r *arcRecord) error {
		it, err := arcItem(r)
		if err != nil {
			return err
		}
		if err := seen.add(it.ID, ln); err != nil {
			return err
		}
		items = append(items, it)
		return nil
	}
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")), " \t\r\n")
	var err error
	if len(trimmed) > 0 && trimmed[0] == '[' {
		err = jsonArray(file, data, each)
	} else {
		err = jsonLines(file, data, each)
	}
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, perr(file, 0, "no items")
	}
	return items, nil
}

func arcItem(r *arcRecord) (Item, error) {
	switch {
	case blank(r.ID):
		return Item{}, errors.New("missing id")
	case r.Question == nil || blank(*r.Question):
		return Item{}, fmt.Errorf("item %s: missing question", r.ID)
	case r.Choices == nil:
		return Item{}, fmt.Errorf("item %s: missing choices", r.ID)
	case r.AnswerKey == nil || blank(*r.AnswerKey):
		return Item{}, fmt.Errorf("item %s: missing answerKey", r.ID)
	}
	text, labels := r.Choices.Text, r.Choices.Label
	if len(text) == 0 {
		return Item{}, fmt.Errorf("item %s: empty choices", r.ID)
	}
	if len(text) != len(labels) {
		return Item{}, fmt.Errorf("item %s: %d choice texts but %d labels", r.ID, len(text), len(labels))
	}
	gold := -1
	for i, l := range labels {
		if blank(l) {
			return Item{}, fmt.Errorf("item %s: choice label %d is empty", r.ID, i)
		}
		for j := 0; j < i; j++ {
			if labels[j] == l {
				return Item{}, fmt.Errorf("item %s: choice label %q repeated", r.ID, l)
			}
		}
		if l == *r.AnswerKey {
			gold = i
		}
	}
	if gold < 0 {
		return Item{}, fmt.Errorf("item %s: unknown answerKey %q (labels %s)", r.ID, *r.AnswerKey, strings.Join(labels, ","))
	}
	it := Item{
		ID:      r.ID,
		Context: "Question: " + *r.Question + "\nAnswer:",
		Choices: append([]string(nil), text...),
		Label:   gold,
		Query:   *r.Question,
	}
	if err := it.Validate(); err != nil {
		return Item{}, fmt.Errorf("item %s: %w", r.ID, err)
	}
	return it, nil
}
