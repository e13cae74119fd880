package tokenizer

import (
	"sort"
	"unicode"
	"unicode/utf8"
)

// The character classes of Hugging Face tokenizers, each from the source the
// reference takes it from: Rust's std for whitespace and lowercase (current
// Unicode, which Go's tables match for every character that matters here), the
// unicode_categories crate (Unicode 9.0, see unicode_tables.go) for control,
// punctuation and non-spacing marks.

// isWhitespace is Rust's char::is_whitespace, the White_Space property.
func isWhitespace(r rune) bool { return unicode.IsSpace(r) }

// isBertWhitespace is the BERT normalizer's whitespace: White_Space plus the
// tab, newline and carriage return (which White_Space has anyway).
func isBertWhitespace(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' || isWhitespace(r)
}

// isBertControl is the BERT normalizer's control test: unicode_categories'
// is_other() (Cc, Cf, and the private-use endpoints; not Cn, not Cs), except
// tab, newline and carriage return, which count as whitespace.
func isBertControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	if r < utf8.RuneSelf {
		return r < 0x20 || r == 0x7F
	}
	return unicode.Is(otherCategory9, r)
}

// isChineseChar is the BERT normalizer's "CJK Unified Ideographs" test, with
// its exact ranges.
func isChineseChar(r rune) bool {
	return (r >= 0x4E00 && r <= 0x9FFF) ||
		(r >= 0x3400 && r <= 0x4DBF) ||
		(r >= 0x20000 && r <= 0x2A6DF) ||
		(r >= 0x2A700 && r <= 0x2B73F) ||
		(r >= 0x2B740 && r <= 0x2B81F) ||
		(r >= 0x2B920 && r <= 0x2CEAF) ||
		(r >= 0xF900 && r <= 0xFAFF) ||
		(r >= 0x2F800 && r <= 0x2FA1F)
}

// isBertPunct is the BERT pre-tokenizer's split class: ASCII punctuation
// (Rust's is_ascii_punctuation, which includes symbols such as $ + < = > ^ `
// | ~) or a Unicode punctuation category.
func isBertPunct(r rune) bool {
	if r < utf8.RuneSelf {
		return (r >= '!' && r <= '/') || (r >= ':' && r <= '@') || (r >= '[' && r <= '`') || (r >= '{' && r <= '~')
	}
	return unicode.Is(punctuation9, r)
}

// isNonspacingMark is unicode_categories' is_mark_nonspacing (Mn).
func isNonspacingMark(r rune) bool { return unicode.Is(nonspacingMark9, r) }

// isWordChar is the Unicode \w of Rust's regex crate (Alphabetic, marks,
// decimal digits, connector punctuation, join controls), which the added
// tokens' single_word option tests against.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) || unicode.Is(unicode.Nd, r) ||
		unicode.Is(unicode.Nl, r) || unicode.Is(unicode.Pc, r) ||
		unicode.Is(unicode.Other_Alphabetic, r) || unicode.Is(unicode.Join_Control, r)
}

// appendLower appends Rust's char::to_lowercase of r. Go's simple mapping
// agrees with it everywhere but at U+0130 (İ), whose full lowercase is two
// characters.
func appendLower(dst []rune, r rune) []rune {
	if r == 0x130 {
		return append(dst, 'i', 0x307)
	}
	return append(dst, unicode.ToLower(r))
}

// Hangul syllable decomposition constants (Unicode §3.12).
const (
	hangulSBase  = 0xAC00
	hangulLBase  = 0x1100
	hangulVBase  = 0x1161
	hangulTBase  = 0x11A7
	hangulTCount = 28
	hangulNCount = 21 * hangulTCount
	hangulSCount = 19 * hangulNCount
)

// nfd is the canonical decomposition (NFD) of rs: every character replaced
// by its full decomposition, then each run of combining characters put in
// canonical order (a stable sort by combining class).
func nfd(rs []rune) []rune {
	out := make([]rune, 0, len(rs)+len(rs)/4)
	for _, r := range rs {
		switch {
		case r < 0xC0: // nothing below À decomposes
			out = append(out, r)
		case r >= hangulSBase && r < hangulSBase+hangulSCount:
			s := r - hangulSBase
			out = append(out, hangulLBase+s/hangulNCount, hangulVBase+(s%hangulNCount)/hangulTCount)
			if t := s % hangulTCount; t != 0 {
				out = append(out, hangulTBase+t)
			}
		default:
			if d, ok := nfdDecomposition[r]; ok {
				for _, c := range d {
					out = append(out, c)
				}
			} else {
				out = append(out, r)
			}
		}
	}
	for i := 0; i < len(out); {
		if ccc(out[i]) == 0 {
			i++
			continue
		}
		j := i
		for j < len(out) && ccc(out[j]) != 0 {
			j++
		}
		run := out[i:j]
		sort.SliceStable(run, func(a, b int) bool { return ccc(run[a]) < ccc(run[b]) })
		i = j
	}
	return out
}

// ccc is the canonical combining class of r (none below U+0300).
func ccc(r rune) uint8 {
	if r < 0x300 {
		return 0
	}
	return combiningClass[r]
}

// toValidRunes decodes s as Go's range does: each invalid byte becomes
// U+FFFD. (Hugging Face only ever sees valid strings.)
func toValidRunes(s string) []rune {
	rs := make([]rune, 0, len(s))
	for _, r := range s {
		rs = append(rs, r)
	}
	return rs
}
