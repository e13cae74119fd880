package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeMeta feeds arbitrary marker and schema bytes, as read from a
// file's meta bucket, to decodeMeta: it must not panic, must accept exactly
// the marker with a schema version from 1 to SchemaVersion, and must say
// ErrCorrupt or ErrSchema otherwise.
func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte(formatMarker), encodeSchema(1))
	f.Add([]byte(formatMarker), encodeSchema(2))
	f.Add([]byte(formatMarker), encodeSchema(0))
	f.Add([]byte(formatMarker), []byte("1"))
	f.Add([]byte("kronfed-stor"), encodeSchema(1))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, format, schema []byte) {
		v, err := decodeMeta(format, schema)
		valid := string(format) == formatMarker && len(schema) == 8 &&
			bytes.Compare(schema, encodeSchema(1)) >= 0 && bytes.Compare(schema, encodeSchema(SchemaVersion)) <= 0
		if (err == nil) != valid {
			t.Fatalf("decodeMeta(%q, %x) = %d, %v; valid %v", format, schema, v, err, valid)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrSchema) {
			t.Fatalf("error %v wraps neither ErrCorrupt nor ErrSchema", err)
		}
		if err == nil && !bytes.Equal(encodeSchema(v), schema) {
			t.Fatalf("schema %x decodes to %d", schema, v)
		}
	})
}

// FuzzDecodeKeys feeds arbitrary key bytes to the decoders of round/version
// keys and client-name keys: no panics, exactly the well-formed keys
// accepted, and those round-trip.
func FuzzDecodeKeys(f *testing.F) {
	f.Add(numKey(0))
	f.Add(numKey(1 << 40))
	f.Add([]byte("client-01"))
	f.Add([]byte("a\x00b"))
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte("x"), 256))
	f.Fuzz(func(t *testing.T, k []byte) {
		n, err := decodeNumKey(k)
		if (err == nil) != (len(k) == 8) {
			t.Fatalf("decodeNumKey(%x) = %d, %v", k, n, err)
		}
		if err == nil && !bytes.Equal(numKey(n), k) {
			t.Fatalf("key %x decodes to %d", k, n)
		}
		c, err := decodeClientKey(k)
		valid := len(k) >= 1 && len(k) <= MaxClientName && bytes.IndexByte(k, 0) < 0
		if (err == nil) != valid {
			t.Fatalf("decodeClientKey(%q) = %q, %v; valid %v", k, c, err, valid)
		}
		if err == nil && c != string(k) {
			t.Fatalf("client key %q decodes to %q", k, c)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
	})
}

// smallStore returns the bytes of a small store holding one of everything.
func smallStore(f *testing.F) []byte {
	path := filepath.Join(f.TempDir(), "seed.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []string{"c1", "c2"} {
		if err := s.AcceptUpload(1, c, record(1, c, 300), []byte("state")); err != nil {
			f.Fatal(err)
		}
	}
	if err := s.PutGlobal(1, []byte("global"), nil); err != nil {
		f.Fatal(err)
	}
	if err := s.PutRound(1, []byte("round"), nil); err != nil {
		f.Fatal(err)
	}
	if err := s.Close(); err != nil {
		f.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

// FuzzVerifyFile feeds arbitrary bytes to the structural check Open runs
// before bbolt maps a file: it must end, never panic, and report every
// problem as ErrCorrupt (the bytes are in memory, so there are no I/O
// errors).
func FuzzVerifyFile(f *testing.F) {
	good := smallStore(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:4096])
	f.Add([]byte("not a database"))
	f.Fuzz(func(t *testing.T, data []byte) {
		err := verifyFile(bytes.NewReader(data), int64(len(data)))
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("verifyFile: %v does not wrap ErrCorrupt", err)
		}
	})
}

// FuzzOpen writes arbitrary bytes as a store file, opens it and reads
// everything: Open and the read methods must return errors, never panic or
// crash or hang, whatever the file holds.
func FuzzOpen(f *testing.F) {
	good := smallStore(f)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[:4096])
	f.Add(good[:8192+100])
	f.Add([]byte("not a database"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return // an empty file is a new store, not a decoding case
		}
		path := filepath.Join(dir, "fuzz.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)
		_ = useDamaged(t, path, true)
	})
}
