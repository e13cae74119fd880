package cluster

import (
	"errors"
	"strings"
	"testing"
)

func TestMetaRoundTrip(t *testing.T) {
	for _, m := range []Meta{
		{Role: RoleCoordinator, GRPC: "10.0.0.1:8443", Model: "stories260K", Adapter: "kron-r8", Capability: "cuda:H200", Version: 1},
		{Role: RoleClient, Model: "sha256:abcd", Examples: 1200, Capability: "cpu:2", Version: 1},
		{Role: RoleClient, GRPC: "[::1]:9000", Model: "<&> ünïcode", Version: 3},
		{Role: RoleClient, Version: 1},
	} {
		b, err := m.Encode()
		if err != nil {
			t.Fatalf("Encode(%+v): %v", m, err)
		}
		got, err := DecodeMeta(b)
		if err != nil {
			t.Fatalf("DecodeMeta(%s): %v", b, err)
		}
		if got != m {
			t.Fatalf("round trip: got %+v, want %+v", got, m)
		}
	}
}

func TestMetaEncodeFillsVersion(t *testing.T) {
	b, err := Meta{Role: RoleClient}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"role":"client","v":1}`; string(b) != want {
		t.Fatalf("Encode = %s, want %s", b, want)
	}
}

func TestMetaEncodeRejects(t *testing.T) {
	for name, m := range map[string]Meta{
		"empty role":        {},
		"unknown role":      {Role: "admin"},
		"negative examples": {Role: RoleClient, Examples: -1},
		"negative version":  {Role: RoleClient, Version: -2},
		"grpc without port": {Role: RoleCoordinator, GRPC: "host"},
		"grpc port zero":    {Role: RoleCoordinator, GRPC: "host:0"},
		"grpc without host": {Role: RoleCoordinator, GRPC: ":8443"},
	} {
		if _, err := m.Encode(); err == nil {
			t.Errorf("%s: Encode(%+v) succeeded", name, m)
		}
	}
}

func TestMetaEncodeTooLarge(t *testing.T) {
	m := Meta{Role: RoleClient, Model: strings.Repeat("m", MetaMaxSize)}
	_, err := m.Encode()
	if !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("Encode of oversize meta: err = %v, want ErrMetaTooLarge", err)
	}
	if !strings.Contains(err.Error(), "512") {
		t.Fatalf("error does not state the limit: %v", err)
	}
	// The largest model that fits is accepted.
	base, _ := Meta{Role: RoleClient}.Encode()
	room := MetaMaxSize - len(base) - len(`,"model":""`)
	if _, err := (Meta{Role: RoleClient, Model: strings.Repeat("m", room)}).Encode(); err != nil {
		t.Fatalf("meta of exactly %d bytes refused: %v", MetaMaxSize, err)
	}
	if _, err := (Meta{Role: RoleClient, Model: strings.Repeat("m", room+1)}).Encode(); !errors.Is(err, ErrMetaTooLarge) {
		t.Fatalf("meta of %d bytes: err = %v", MetaMaxSize+1, err)
	}
}

func TestDecodeMetaRejects(t *testing.T) {
	cases := map[string]string{
		"empty":             ``,
		"not json":          `role=client`,
		"array":             `[1,2]`,
		"null":              `null`,
		"missing role":      `{"v":1}`,
		"unknown role":      `{"role":"root","v":1}`,
		"missing version":   `{"role":"client"}`,
		"negative examples": `{"role":"client","examples":-5,"v":1}`,
		"fractional":        `{"role":"client","examples":1.5,"v":1}`,
		"huge number":       `{"role":"client","examples":1e400,"v":1}`,
		"wrong type":        `{"role":"client","v":"1"}`,
		"trailing data":     `{"role":"client","v":1} {}`,
		"bad grpc":          `{"role":"coordinator","grpc":"nohostport","v":1}`,
		"invalid utf8":      "{\"role\":\"client\",\"model\":\"\xff\xfe\",\"v\":1}",
		"oversize":          `{"role":"client","model":"` + strings.Repeat("x", MetaMaxSize) + `","v":1}`,
	}
	for name, in := range cases {
		if m, err := DecodeMeta([]byte(in)); err == nil {
			t.Errorf("%s: DecodeMeta(%q) = %+v, want error", name, in, m)
		}
	}
	if _, err := DecodeMeta([]byte(cases["oversize"])); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("oversize: err = %v, want ErrMetaTooLarge", err)
	}
}

func TestDecodeMetaIgnoresUnknownFields(t *testing.T) {
	m, err := DecodeMeta([]byte(`{"role":"client","v":2,"future":{"x":[1,2]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if m != (Meta{Role: RoleClient, Version: 2}) {
		t.Fatalf("got %+v", m)
	}
}

func FuzzDecodeMeta(f *testing.F) {
	for _, s := range []string{
		`{"role":"client","v":1}`,
		`{"role":"coordinator","grpc":"127.0.0.1:8443","model":"m","adapter":"a","examples":3,"cap":"cpu:2","v":1}`,
		`{"role":"client","examples":-1,"v":1}`,
		`{"role":"client","model":"\u2028<>&","v":1}`,
		`null`, ``, `{`, `[]`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMeta(b)
		if err != nil {
			return
		}
		// Whatever decodes is valid: it re-encodes (unless escaping grew it
		// past the limit) and decodes to the same value.
		enc, err := m.Encode()
		if err != nil {
			if !errors.Is(err, ErrMetaTooLarge) {
				t.Fatalf("decoded %+v does not encode: %v", m, err)
			}
			return
		}
		again, err := DecodeMeta(enc)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		if again != m {
			t.Fatalf("re-decode: got %+v, want %+v", again, m)
		}
	})
}
