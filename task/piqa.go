package task

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

type piqaRecord struct {
	Goal *string `json:"goal"`
	Sol1 *string `json:"sol1"`
	Sol2 *string `json:"sol2"`
}

// LoadPIQA reads PIQA's {goal, sol1, sol2} JSON lines and the aligned labels
// file (one 0 or 1 a line). Context is "Question: {goal}\nAnswer:", Choices
// [sol1, sol2]. IDs are "piqa-{index}" (0-based line index). The two files must
// hold the same number of lines.
func LoadPIQA(jsonlPath, labelsPath string) (*Task, error) {
	data, err := readFile(jsonlPath)
	if err != nil {
		return nil, err
	}
	labels, err := readFile(labelsPath)
	if err != nil {
		return nil, err
	}
	items, err := parsePIQA(jsonlPath, data, labelsPath, labels)
	if err != nil {
		return nil, err
	}
	return &Task{Name: "piqa", Items: items, Source: jsonlPath + " + " + labelsPath}, nil
}

func parsePIQA(file string, data []byte, labelsFile string, labelsData []byte) ([]Item, error) {
	var items []Item
	err := jsonLines(file, data, func(ln int, r *piqaRecord) error {
		switch {
		case r.Goal == nil || blank(*r.Goal):
			return errors.New("missing goal")
		case r.Sol1 == nil || blank(*r.Sol1):
			return errors.New("missing or empty sol1")
		case r.Sol2 == nil || blank(*r.Sol2):
			return errors.New("missing or empty sol2")
		}
		items = append(items, Item{
			ID:      fmt.Sprintf("piqa-%d", len(items)),
			Context: "Question: " + *r.Goal + "\nAnswer:",
			Choices: []string{*r.Sol1, *r.Sol2},
			Label:   -1, // set from the labels file
			Query:   *r.Goal,
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	lines, err := splitLines(labelsFile, labelsData)
	if err != nil {
		return nil, err
	}
	for k, l := range lines {
		if k >= len(items) {
			return nil, perr(labelsFile, l.n, "label without an item: %s has %d items", filepath.Base(file), len(items))
		}
		switch strings.TrimSpace(l.text) {
		case "0":
			items[k].Label = 0
		case "1":
			items[k].Label = 1
		case "":
			return nil, perr(labelsFile, l.n, "blank line")
		default:
			return nil, perr(labelsFile, l.n, "label %q is not 0 or 1", strings.TrimSpace(l.text))
		}
	}
	if len(lines) < len(items) {
		return nil, perr(labelsFile, len(lines)+1, "missing label: %s has %d items but %d labels",
			filepath.Base(file), len(items), len(lines))
	}
	return items, nil
}
