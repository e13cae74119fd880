package tokenizer

import (
	"testing"
	"unicode"
)

func TestNFD(t *testing.T) {
	for in, want := range map[string]string{
		"é":             "e\u0301",
		"Ǻ":             "A\u030a\u0301", // decomposes twice
		"한":             "\u1112\u1161\u11ab",
		"가":             "\u1100\u1161",
		"a\u0301\u0316": "a\u0316\u0301", // ccc 220 before 230
		"abc":           "abc",
	} {
		if got := string(nfd([]rune(in))); got != want {
			t.Errorf("nfd(%q) = %q, want %q", in, got, want)
		}
	}
	// The fast paths in nfd and ccc rely on these.
	for r := range nfdDecomposition {
		if r < 0xC0 {
			t.Errorf("U+%04X decomposes", r)
		}
	}
	for r := range combiningClass {
		if r < 0x300 {
			t.Errorf("U+%04X has a combining class", r)
		}
	}
}

func TestCharClasses(t *testing.T) {
	for r := rune(0); r < 0x80; r++ {
		ascii := unicode.IsPunct(r) || unicode.IsSymbol(r)
		if isBertPunct(r) != ascii {
			t.Errorf("isBertPunct(%q) = %v", r, !ascii)
		}
		control := unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r'
		if isBertControl(r) != control {
			t.Errorf("isBertControl(%q) = %v", r, !control)
		}
	}
	for r, want := range map[rune]bool{0xAD: true, 0x200B: true, 0xFEFF: true, 0xE000: true, 0xE001: false, 0xF8FF: true, 0x10FFFD: true, 0x10FFFC: false, 'a': false, 0x0890: false} {
		if isBertControl(r) != want {
			t.Errorf("isBertControl(U+%04X) = %v", r, !want)
		}
	}
	for r, want := range map[rune]bool{'¿': true, '«': true, '—': true, '、': true, 0x2E3B: true, 0x2E45: false, '€': false} {
		if isBertPunct(r) != want {
			t.Errorf("isBertPunct(%q) = %v", r, !want)
		}
	}
}
