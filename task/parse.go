package task

import (
	"bytes"
	"compress/bzip2"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ParseError reports bad input: the file, the 1-based line (0 when the error
// concerns the whole file) and what is wrong.
type ParseError struct {
	File string
	Line int
	Err  error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.File, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

func perr(file string, line int, format string, args ...any) *ParseError {
	return &ParseError{File: file, Line: line, Err: fmt.Errorf(format, args...)}
}

// readFile reads a whole file, decompressing it when the name ends in ".bz2".
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".bz2") {
		r = bzip2.NewReader(f)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, &ParseError{File: path, Err: err}
	}
	return data, nil
}

// line is one input line with its 1-based number, without "\n" or "\r\n".
type line struct {
	n    int
	text string
}

// splitLines splits data into lines (a UTF-8 byte-order mark at the start is
// dropped). Blank lines at the end of the file are ignored; a blank line before
// the last non-blank one is an error, since line-aligned files (PIQA's labels,
// HellaSwag's 6-line records) would silently shift after it.
func splitLines(file string, data []byte) ([]line, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	raw := strings.Split(string(data), "\n")
	last := len(raw) - 1
	for last >= 0 && strings.TrimSpace(raw[last]) == "" {
		last--
	}
	if last < 0 {
		return nil, perr(file, 0, "empty file")
	}
	out := make([]line, 0, last+1)
	for i := 0; i <= last; i++ {
		s := strings.TrimSuffix(raw[i], "\r")
		out = append(out, line{n: i + 1, text: s})
	}
	return out, nil
}

// jsonLines decodes each line of a JSON-lines file into a fresh T. Blank lines
// (other than trailing ones) and lines that are not exactly one JSON object
// are errors.
func jsonLines[T any](file string, data []byte, each func(ln int, rec *T) error) error {
	lines, err := splitLines(file, data)
	if err != nil {
		return err
	}
	for _, l := range lines {
		if strings.TrimSpace(l.text) == "" {
			return perr(file, l.n, "blank line")
		}
		if t := strings.TrimSpace(l.text); t[0] != '{' {
			return perr(file, l.n, "not a JSON object")
		}
		var rec T
		if err := json.Unmarshal([]byte(l.text), &rec); err != nil {
			return perr(file, l.n, "malformed JSON: %v", err)
		}
		if err := each(l.n, &rec); err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				return err
			}
			return &ParseError{File: file, Line: l.n, Err: err}
		}
	}
	return nil
}

// lineAt returns the 1-based line of byte offset off in data.
func lineAt(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return 1 + bytes.Count(data[:off], []byte("\n"))
}

// jsonArray decodes a file holding one JSON array of objects, calling each with
// the line where the element starts.
func jsonArray[T any](file string, data []byte, each func(ln int, rec *T) error) error {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(data)) == 0 {
		return perr(file, 0, "empty file")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return perr(file, lineAt(data, dec.InputOffset()), "malformed JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return perr(file, 1, "expected a JSON array")
	}
	for dec.More() {
		// The element starts at the first byte after the last token that is
		// neither white space nor the separating comma.
		off := dec.InputOffset()
		for off < int64(len(data)) && strings.IndexByte(" \t\r\n,", data[off]) >= 0 {
			off++
		}
		ln := lineAt(data, off)
		if off < int64(len(data)) && data[off] != '{' {
			return perr(file, ln, "array element is not a JSON object")
		}
		var rec T
		if err := dec.Decode(&rec); err != nil {
			return perr(file, ln, "malformed JSON: %v", err)
		}
		if err := each(ln, &rec); err != nil {
			var pe *ParseError
			if errors.As(err, &pe) {
				return err
			}
			return &ParseError{File: file, Line: ln, Err: err}
		}
	}
	if _, err := dec.Token(); err != nil {
		return perr(file, lineAt(data, dec.InputOffset()), "malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return perr(file, lineAt(data, dec.InputOffset()), "data after the JSON array")
	}
	return nil
}

// ids tracks item IDs for duplicate detection.
type ids map[string]int

func (s ids) add(id string, ln int) error {
	if prev, dup := s[id]; dup {
		return fmt.Errorf("duplicate id %q (first on line %d)", id, prev)
	}
	s[id] = ln
	return nil
}

func blank(s string) bool { return strings.TrimSpace(s) == "" }
