package task

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// LoadHellaSwagText reads HellaSwag in the lm-eval-harness text form (plain or
// ".bz2"): 6 lines an example — "activity label: context", the gold index 0-3,
// then the 4 endings. Lines are used verbatim (the producer already
// preprocessed them): Context is the first line, Choices the endings. IDs are
// "hellaswag-{index}" (0-based example index).
func LoadHellaSwagText(path string) (*Task, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	items, err := parseHellaSwagText(path, data)
	if err != nil {
		return nil, err
	}
	return &Task{Name: "hellaswag", Items: items, Source: path}, nil
}

// hellaswagEndings is the number of endings of every HellaSwag example.
const hellaswagEndings = 4

func parseHellaSwagText(file string, data []byte) ([]Item, error) {
	lines, err := splitLines(file, data)
	if err != nil {
		return nil, err
	}
	const per = 2 + hellaswagEndings
	var items []Item
	for k := 0; k < len(lines); k += per {
		if k+per > len(lines) {
			return nil, perr(file, lines[k].n, "incomplete example: %d of %d lines", len(lines)-k, per)
		}
		ex := lines[k : k+per]
		if blank(ex[0].text) {
			return nil, perr(file, ex[0].n, "empty context")
		}
		g := strings.TrimSpace(ex[1].text)
		label, err := strconv.Atoi(g)
		if err != nil || len(g) != 1 {
			return nil, perr(file, ex[1].n, "gold index %q is not a number 0-%d", g, hellaswagEndings-1)
		}
		if label < 0 || label >= hellaswagEndings {
			return nil, perr(file, ex[1].n, "gold index %d out of range 0-%d", label, hellaswagEndings-1)
		}
		choices := make([]string, hellaswagEndings)
		for j := range choices {
			l := ex[2+j]
			if blank(l.text) {
				return nil, perr(file, l.n, "empty ending %d", j)
			}
			choices[j] = l.text
		}
		items = append(items, Item{
			ID:      fmt.Sprintf("hellaswag-%d", len(items)),
			Context: ex[0].text,
			Choices: choices,
			Label:   label,
			Query:   ex[0].text,
		})
	}
	return items, nil
}

type hellaswagRecord struct {
	Ind           json.RawMessage `json:"ind"`
	ActivityLabel *string         `json:"activity_label"`
	CtxA          *string         `json:"ctx_a"`
	CtxB          *string         `json:"ctx_b"`
	Endings       []string        `json:"endings"`
	Label         json.RawMessage `json:"label"`
}

// LoadHellaSwagJSONL reads HellaSwag's original JSON lines ({ind, ctx, ctx_a,
// ctx_b, activity_label, endings[4], label}) with lm-eval-harness's
// processing: Context = HellaSwagPreprocess(activity_label + ": " + ctx_a + " "
// + PyCapitalize(ctx_b)), Choices = HellaSwagPreprocess of each ending. label
// may be a number or a digit string; unlabelled (test) lines are rejected. IDs
// are the "ind" field, or "hellaswag-{index}" without it.
func LoadHellaSwagJSONL(path string) (*Task, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	items, err := parseHellaSwagJSONL(path, data)
	if err != nil {
		return nil, err
	}
	return &Task{Name: "hellaswag", Items: items, Source: path}, nil
}

func parseHellaSwagJSONL(file string, data []byte) ([]Item, error) {
	var items []Item
	seen := ids{}
	err := jsonLines(file, data, func(ln int, r *hellaswagRecord) error {
		id := fmt.Sprintf("hellaswag-%d", len(items))
		if len(r.Ind) > 0 && string(r.Ind) != "null" {
			var n json.Number
			var s string
			switch {
			case json.Unmarshal(r.Ind, &n) == nil:
				id = n.String()
			case json.Unmarshal(r.Ind, &s) == nil && s != "":
				id = s
			default:
				return fmt.Errorf("ind %s is not a number or string", r.Ind)
			}
		}
		switch {
		case r.ActivityLabel == nil:
			return fmt.Errorf("item %s: missing activity_label", id)
		case r.CtxA == nil:
			return fmt.Errorf("item %s: missing ctx_a", id)
		case r.CtxB == nil:
			return fmt.Errorf("item %s: missing ctx_b", id)
		case len(r.Endings) == 0:
			return fmt.Errorf("item %s: empty endings", id)
		case len(r.Endings) != hellaswagEndings:
			return fmt.Errorf("item %s: %d endings, want %d", id, len(r.Endings), hellaswagEndings)
		}
		label, err := hellaswagLabel(r.Label)
		if err != nil {
			return fmt.Errorf("item %s: %w", id, err)
		}
		ctx := HellaSwagPreprocess(*r.ActivityLabel + ": " + *r.CtxA + " " + PyCapitalize(*r.CtxB))
		choices := make([]string, len(r.Endings))
		for j, e := range r.Endings {
			choices[j] = HellaSwagPreprocess(e)
			if blank(choices[j]) {
				return fmt.Errorf("item %s: ending %d is empty after preprocessing (%q)", id, j, e)
			}
		}
		if err := seen.add(id, ln); err != nil {
			return err
		}
		items = append(items, Item{ID: id, Context: ctx, Choices: choices, Label: label, Query: ctx})
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

func hellaswagLabel(raw json.RawMessage) (int, error) {
	if len(raw) == 0 || string(raw) == "null" || string(raw) == `""` {
		return 0, errors.New("missing label (unlabelled file?)")
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("label %s is not an integer", raw)
	}
	if v < 0 || v >= hellaswagEndings {
		return 0, fmt.Errorf("label %d out of range 0-%d", v, hellaswagEndings-1)
	}
	return v, nil
}

var hellaswagBracket = regexp.MustCompile(`\[.*?\]`)

// HellaSwagPreprocess is lm-eval-harness's hellaswag preprocess(text): strip
// (Python str.strip), replace " [title]" with ". ", delete every "[...]" span
// (shortest match, not across newlines), then replace each "  " with " " in a
// single left-to-right pass.
func HellaSwagPreprocess(text string) string {
	text = pyStrip(text)
	text = strings.ReplaceAll(text, " [title]", ". ")
	text = hellaswagBracket.ReplaceAllString(text, "")
	text = strings.ReplaceAll(text, "  ", " ")
	return text
}

// pyStrip trims what Python's str.strip() trims: Unicode white space plus the
// separators U+001C..U+001F.
func pyStrip(s string) string {
	return strings.TrimFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
	})
}

// PyCapitalize is Python's str.capitalize(): the first character in title case,
// the rest lower case. Exact for ASCII; Unicode special casings that change a
// string's length (e.g. "ß", "İ") follow Go's simple case mapping instead.
func PyCapitalize(s string) string {
	if s == "" {
		return s
	}
	r, size := utf8.DecodeRuneInString(s)
	return string(unicode.ToTitle(r)) + strings.ToLower(s[size:])
}
