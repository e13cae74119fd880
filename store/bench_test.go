package store

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkAcceptUpload measures an acknowledged upload: one transaction
// writing the record and a ~300-byte state snapshot, committed with fsync
// (and, for comparison, without).
func BenchmarkAcceptUpload(b *testing.B) {
	state := make([]byte, 300)
	for _, size := range []int{64 << 10, 4 << 20} {
		for _, sync := range []bool{true, false} {
			name := fmt.Sprintf("%dKiB/sync=%v", size>>10, sync)
			b.Run(name, func(b *testing.B) {
				s := newStore(b, sync)
				rec := record(1, "bench", size)
				b.SetBytes(int64(size))
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					if err := s.AcceptUpload(uint64(i/64), fmt.Sprintf("client-%02d", i%64), rec, state); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkUploads measures streaming one round's uploads (64 uploads of
// 256 KiB) without copying, as an aggregator would.
func BenchmarkUploads(b *testing.B) {
	s := newStore(b, false)
	rec := record(1, "bench", 256<<10)
	for c := range 64 {
		if err := s.AcceptUpload(1, fmt.Sprintf("client-%02d", c), rec, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(64 * int64(len(rec)))
	for b.Loop() {
		var sum byte
		if err := s.Uploads(1, func(_ string, r []byte) error {
			for _, x := range r {
				sum ^= x
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen measures Open (structural check included) of a store
// holding 2000 uploads of 64 KiB (about 130 MB) in 20 rounds.
func BenchmarkOpen(b *testing.B) {
	path := filepath.Join(b.TempDir(), "state.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	rec := record(1, "bench", 64<<10)
	for i := range 2000 {
		if err := s.AcceptUpload(uint64(i/100), fmt.Sprintf("client-%03d", i%100), rec, []byte("state")); err != nil {
			b.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		s, err := Open(path, Options{NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
