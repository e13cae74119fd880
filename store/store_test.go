package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// newStore opens a fresh store in a temporary folder (NoSync unless sync).
func newStore(t testing.TB, sync bool) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{NoSync: !sync})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustState(t *testing.T, s *Store) []byte {
	t.Helper()
	st, ok, err := s.State()
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal("no state snapshot")
	}
	return st
}

// record makes deterministic test bytes for (round, client).
func record(round uint64, client string, n int) []byte {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], round)
	copy(seed[8:], client)
	b := make([]byte, n)
	rand.NewChaCha8(seed).Read(b)
	return b
}

func TestOpenCreatesStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	if _, ok, err := s.State(); err != nil || ok {
		t.Errorf("State() on a new store: ok %v err %v", ok, err)
	}
	st := s.Stats()
	if st.Err != nil || st.FileBytes == 0 || st.Uploads != 0 || st.Globals != 0 || st.Rounds != 0 || st.StateBytes != 0 {
		t.Errorf("Stats() on a new store: %+v", st)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
	// The marker and schema are written.
	if err := s.db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		v, err := decodeMeta(m.Get(keyFormat), m.Get(keySchema))
		if err == nil && v != SchemaVersion {
			err = fmt.Errorf("schema %d", v)
		}
		return err
	}); err != nil {
		t.Error(err)
	}
	if _, err := Open("", Options{}); err == nil {
		t.Error("Open(\"\") succeeded")
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing", "state.db"), Options{}); err == nil {
		t.Error("Open in a missing folder succeeded")
	}
}

func TestState(t *testing.T) {
	s := newStore(t, false)
	if err := s.SaveState([]byte("one")); err != nil {
		t.Fatal(err)
	}
	got := mustState(t, s)
	if string(got) != "one" {
		t.Fatalf("State() = %q", got)
	}
	got[0] = 'X' // a copy: changing it changes nothing stored
	if got := mustState(t, s); string(got) != "one" {
		t.Fatalf("State() after changing the returned slice = %q", got)
	}
	if err := s.SaveState([]byte("two")); err != nil {
		t.Fatal(err)
	}
	if got := mustState(t, s); string(got) != "two" {
		t.Fatalf("State() = %q, want two", got)
	}
	for _, bad := range [][]byte{nil, {}} {
		err := s.SaveState(bad)
		if err == nil || !strings.Contains(err.Error(), "store: save state: empty state snapshot") {
			t.Errorf("SaveState(%v) = %v", bad, err)
		}
	}
	if got := mustState(t, s); string(got) != "two" {
		t.Fatalf("State() after refused saves = %q", got)
	}
}

func TestUploadsRoundTrip(t *testing.T) {
	s := newStore(t, false)
	type up struct {
		round  uint64
		client string
	}
	ups := []up{{3, "c2"}, {3, "c1"}, {3, "a-long-client-name"}, {1, "c1"}, {1 << 40, "c9"}, {0, "z"}, {3, "B"}}
	for i, u := range ups {
		state := []byte("state " + strconv.Itoa(i))
		if err := s.AcceptUpload(u.round, u.client, record(u.round, u.client, 1000+i), state); err != nil {
			t.Fatal(err)
		}
		if got := mustState(t, s); !bytes.Equal(got, state) {
			t.Fatalf("state after upload %d = %q", i, got)
		}
	}
	for i, u := range ups {
		got, err := s.Upload(u.round, u.client)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, record(u.round, u.client, 1000+i)) {
			t.Errorf("Upload(%d, %q) differs", u.round, u.client)
		}
	}
	clients, err := s.UploadClients(3)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"B", "a-long-client-name", "c1", "c2"}; !slices.Equal(clients, want) {
		t.Errorf("UploadClients(3) = %q, want %q", clients, want)
	}
	var seen []string
	if err := s.Uploads(3, func(c string, rec []byte) error {
		seen = append(seen, c)
		i := slices.IndexFunc(ups, func(u up) bool { return u.round == 3 && u.client == c })
		if !bytes.Equal(rec, record(3, c, 1000+i)) {
			t.Errorf("Uploads(3) record of %q differs", c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, clients) {
		t.Errorf("Uploads(3) visited %q, want %q", seen, clients)
	}
	// A round without uploads.
	if c, err := s.UploadClients(2); err != nil || c != nil {
		t.Errorf("UploadClients(2) = %q, %v", c, err)
	}
	if err := s.Uploads(2, func(string, []byte) error { t.Error("fn called for an empty round"); return nil }); err != nil {
		t.Error(err)
	}
	// Missing records.
	for _, u := range []up{{2, "c1"}, {3, "c3"}} {
		_, err := s.Upload(u.round, u.client)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Upload(%d, %q) = %v, want ErrNotFound", u.round, u.client, err)
		}
		if want := fmt.Sprintf("store: upload round %d client %q: store: not found", u.round, u.client); err.Error() != want {
			t.Errorf("error %q, want %q", err, want)
		}
	}
	// A nil state leaves the snapshot alone.
	before := mustState(t, s)
	if err := s.AcceptUpload(9, "c1", []byte{1}, nil); err != nil {
		t.Fatal(err)
	}
	if got := mustState(t, s); !bytes.Equal(got, before) {
		t.Errorf("nil state changed the snapshot to %q", got)
	}
	// Upload returns a copy.
	a, _ := s.Upload(9, "c1")
	a[0] = 99
	if b, _ := s.Upload(9, "c1"); b[0] != 1 {
		t.Error("Upload does not return a copy")
	}
}

func TestAcceptUploadDuplicate(t *testing.T) {
	s := newStore(t, false)
	if err := s.AcceptUpload(3, "c1", []byte("first"), []byte("state 1")); err != nil {
		t.Fatal(err)
	}
	err := s.AcceptUpload(3, "c1", []byte("second"), []byte("state 2"))
	if !errors.Is(err, ErrDuplicate) {
		t.Fatalf("second AcceptUpload = %v, want ErrDuplicate", err)
	}
	if want := `store: accept upload round 3 client "c1": store: duplicate upload`; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if got := mustState(t, s); string(got) != "state 1" {
		t.Errorf("state after a duplicate = %q, want it unchanged", got)
	}
	if got, _ := s.Upload(3, "c1"); string(got) != "first" {
		t.Errorf("record after a duplicate = %q, want it unchanged", got)
	}
	// The same client in another round is not a duplicate.
	if err := s.AcceptUpload(4, "c1", []byte("next"), []byte("state 3")); err != nil {
		t.Fatal(err)
	}
}

func TestAcceptUploadRefusesBadInput(t *testing.T) {
	s := newStore(t, false)
	if err := s.SaveState([]byte("keep")); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", MaxClientName)
	for _, tc := range []struct {
		client        string
		record, state []byte
		want          string
	}{
		{"", []byte("r"), nil, "empty client name"},
		{long + "y", []byte("r"), nil, "client name of 256 bytes is longer than 255"},
		{"a\x00b", []byte("r"), nil, `client name "a\x00b" contains a NUL byte`},
		{"c1", nil, nil, "empty upload record"},
		{"c1", []byte{}, nil, "empty upload record"},
		{"c1", []byte("r"), []byte{}, "empty state snapshot"},
	} {
		err := s.AcceptUpload(1, tc.client, tc.record, tc.state)
		if err == nil || !strings.HasPrefix(err.Error(), "store: accept upload round 1 client ") || !strings.HasSuffix(err.Error(), tc.want) {
			t.Errorf("AcceptUpload(1, %q, %q, %q) = %v, want ...%s", tc.client, tc.record, tc.state, err, tc.want)
		}
	}
	if err := s.AcceptUpload(1, long, []byte("r"), nil); err != nil {
		t.Errorf("a %d-byte client name: %v", MaxClientName, err)
	}
	if _, err := s.Upload(1, ""); err == nil || !strings.Contains(err.Error(), "empty client name") {
		t.Errorf("Upload with an empty client = %v", err)
	}
	if got := mustState(t, s); string(got) != "keep" {
		t.Errorf("state = %q after refused uploads", got)
	}
	if st := s.Stats(); st.Uploads != 1 {
		t.Errorf("%d uploads stored, want 1", st.Uploads)
	}
}

// TestAcceptUploadAtomic fails AcceptUpload's transaction after the upload
// is written and before the snapshot is: neither may remain.
func TestAcceptUploadAtomic(t *testing.T) {
	s := newStore(t, false)
	if err := s.AcceptUpload(1, "c1", []byte("r1"), []byte("state 1")); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	testHookAcceptUpload = func() error { return boom }
	err := s.AcceptUpload(1, "c2", []byte("r2"), []byte("state 2"))
	testHookAcceptUpload = nil
	if !errors.Is(err, boom) {
		t.Fatalf("AcceptUpload with failing hook = %v", err)
	}
	if _, err := s.Upload(1, "c2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("upload of the failed transaction: %v, want ErrNotFound", err)
	}
	if got := mustState(t, s); string(got) != "state 1" {
		t.Errorf("state = %q, want state 1", got)
	}
	if err := s.AcceptUpload(1, "c2", []byte("r2"), []byte("state 2")); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

// TestAcceptUploadReadersSeeBothOrNeither runs concurrent writers and a
// reader that, in one read transaction, compares the snapshot (a count of
// accepted uploads) with the uploads stored.
func TestAcceptUploadReadersSeeBothOrNeither(t *testing.T) {
	s := newStore(t, false)
	const writers, each = 4, 50
	var (
		mu    sync.Mutex // orders the state machine, as the coordinator does
		count int
		wg    sync.WaitGroup
	)
	done := make(chan struct{})
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				mu.Lock()
				count++
				err := s.AcceptUpload(7, fmt.Sprintf("w%d-%03d", w, i), []byte("payload"), []byte(strconv.Itoa(count)))
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var readers sync.WaitGroup
	readers.Go(func() {
		checks := 0
		for {
			select {
			case <-done:
				if checks == 0 {
					t.Error("reader never ran")
				}
				return
			default:
			}
			err := s.db.View(func(tx *bolt.Tx) error {
				n := 0
				if v := tx.Bucket(bucketState).Get(keySnapshot); v != nil {
					n, _ = strconv.Atoi(string(v))
				}
				stored := 0
				if rb := tx.Bucket(bucketUploads).Bucket(numKey(7)); rb != nil {
					c := rb.Cursor()
					for k, _ := c.First(); k != nil; k, _ = c.Next() {
						stored++
					}
				}
				if n != stored {
					return fmt.Errorf("snapshot counts %d uploads, the file holds %d", n, stored)
				}
				return nil
			})
			if err != nil {
				t.Error(err)
				return
			}
			checks++
		}
	})
	wg.Wait()
	close(done)
	readers.Wait()
	if c, _ := s.UploadClients(7); len(c) != writers*each {
		t.Errorf("%d uploads, want %d", len(c), writers*each)
	}
}

func TestUploadsCallback(t *testing.T) {
	s := newStore(t, false)
	for _, c := range []string{"a", "b", "c"} {
		if err := s.AcceptUpload(1, c, []byte(c), nil); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	var seen []string
	err := s.Uploads(1, func(c string, _ []byte) error {
		seen = append(seen, c)
		if c == "b" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || err.Error() != `store: uploads round 1: client "b": stop` {
		t.Errorf("Uploads with fn error = %v", err)
	}
	if !slices.Equal(seen, []string{"a", "b"}) {
		t.Errorf("visited %q", seen)
	}
	// A panic in fn is the caller's: it propagates, it is not turned into
	// ErrCorrupt, and the store stays usable.
	func() {
		defer func() {
			if r := recover(); r != "caller's panic" {
				t.Errorf("recovered %v, want the caller's panic", r)
			}
		}()
		_ = s.Uploads(1, func(string, []byte) error { panic("caller's panic") })
		t.Error("Uploads returned after fn panicked")
	}()
	if err := s.AcceptUpload(2, "a", []byte("x"), []byte("s")); err != nil {
		t.Errorf("store unusable after a callback panic: %v", err)
	}
}

func TestLargeUpload(t *testing.T) {
	s := newStore(t, false)
	big := record(1, "big", 24<<20)
	if err := s.AcceptUpload(1, "big", big, []byte("s")); err != nil {
		t.Fatal(err)
	}
	got, err := s.Upload(1, "big")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("large upload round trip: equal %v, err %v", bytes.Equal(got, big), err)
	}
	if err := s.Uploads(1, func(_ string, rec []byte) error {
		if !bytes.Equal(rec, big) {
			t.Error("Uploads record differs")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.UploadBytes != int64(len(big)) || st.FileBytes < int64(len(big)) {
		t.Errorf("Stats %+v", st)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}

func TestDeleteUploads(t *testing.T) {
	s := newStore(t, false)
	for r := uint64(1); r <= 5; r++ {
		for c := range int(r) {
			if err := s.AcceptUpload(r, fmt.Sprintf("c%d", c), []byte("x"), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n, err := s.DeleteUploads(0); n != 0 || err != nil {
		t.Errorf("DeleteUploads(0) = %d, %v", n, err)
	}
	if n, err := s.DeleteUploads(1); n != 0 || err != nil {
		t.Errorf("DeleteUploads(1) = %d, %v", n, err)
	}
	n, err := s.DeleteUploads(4) // rounds 1, 2, 3: 1+2+3 uploads
	if n != 6 || err != nil {
		t.Errorf("DeleteUploads(4) = %d, %v, want 6", n, err)
	}
	for r := uint64(1); r <= 5; r++ {
		c, err := s.UploadClients(r)
		if err != nil {
			t.Fatal(err)
		}
		want := int(r)
		if r < 4 {
			want = 0
		}
		if len(c) != want {
			t.Errorf("round %d: %d uploads after deletion, want %d", r, len(c), want)
		}
	}
	if _, err := s.Upload(2, "c0"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted upload: %v", err)
	}
	// A deleted round can take uploads again (retention is not a replay guard).
	if err := s.AcceptUpload(2, "c0", []byte("y"), nil); err != nil {
		t.Error(err)
	}
	if n, err := s.DeleteUploads(^uint64(0)); n != 10 || err != nil {
		t.Errorf("DeleteUploads(max) = %d, %v, want 10", n, err)
	}
	if st := s.Stats(); st.Uploads != 0 || st.UploadRounds != 0 {
		t.Errorf("Stats after deleting all: %+v", st)
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}

func TestGlobals(t *testing.T) {
	s := newStore(t, false)
	if _, _, err := s.LatestGlobal(); !errors.Is(err, ErrNotFound) {
		t.Errorf("LatestGlobal on an empty store = %v", err)
	}
	for v := uint64(0); v < 5; v++ {
		if err := s.PutGlobal(v, []byte("global "+strconv.FormatUint(v, 10)), []byte("state "+strconv.FormatUint(v, 10))); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustState(t, s); string(got) != "state 4" {
		t.Errorf("state = %q", got)
	}
	for v := uint64(0); v < 5; v++ {
		if got, err := s.Global(v); err != nil || string(got) != "global "+strconv.FormatUint(v, 10) {
			t.Errorf("Global(%d) = %q, %v", v, got, err)
		}
	}
	if v, rec, err := s.LatestGlobal(); v != 4 || string(rec) != "global 4" || err != nil {
		t.Errorf("LatestGlobal() = %d, %q, %v", v, rec, err)
	}
	if _, err := s.Global(5); !errors.Is(err, ErrNotFound) || err.Error() != "store: global version 5: store: not found" {
		t.Errorf("Global(5) = %v", err)
	}
	// Conflicting bytes: refused, nothing written.
	err := s.PutGlobal(2, []byte("other"), []byte("state X"))
	if !errors.Is(err, ErrConflict) || !strings.HasPrefix(err.Error(), "store: put global version 2: ") {
		t.Errorf("conflicting PutGlobal = %v", err)
	}
	if got, _ := s.Global(2); string(got) != "global 2" {
		t.Errorf("Global(2) after a conflict = %q", got)
	}
	if got := mustState(t, s); string(got) != "state 4" {
		t.Errorf("state after a conflict = %q", got)
	}
	// The same bytes again: allowed, the snapshot is replaced.
	if err := s.PutGlobal(2, []byte("global 2"), []byte("state again")); err != nil {
		t.Errorf("identical PutGlobal: %v", err)
	}
	if got := mustState(t, s); string(got) != "state again" {
		t.Errorf("state after an identical PutGlobal = %q", got)
	}
	if err := s.PutGlobal(6, nil, nil); err == nil || !strings.Contains(err.Error(), "empty global record") {
		t.Errorf("PutGlobal with an empty record = %v", err)
	}
	// Pruning.
	if _, err := s.PruneGlobals(0); err == nil {
		t.Error("PruneGlobals(0) succeeded")
	}
	if n, err := s.PruneGlobals(10); n != 0 || err != nil {
		t.Errorf("PruneGlobals(10) = %d, %v", n, err)
	}
	if n, err := s.PruneGlobals(2); n != 3 || err != nil {
		t.Errorf("PruneGlobals(2) = %d, %v, want 3", n, err)
	}
	for v := uint64(0); v < 5; v++ {
		_, err := s.Global(v)
		if (v < 3) != errors.Is(err, ErrNotFound) {
			t.Errorf("after pruning, Global(%d) = %v", v, err)
		}
	}
	if v, _, _ := s.LatestGlobal(); v != 4 {
		t.Errorf("latest after pruning = %d", v)
	}
	if st := s.Stats(); st.Globals != 2 {
		t.Errorf("Stats().Globals = %d, want 2", st.Globals)
	}
}

func TestRounds(t *testing.T) {
	s := newStore(t, false)
	for _, r := range []uint64{5, 1, 300, 2} {
		if err := s.PutRound(r, []byte(fmt.Sprintf(`{"round":%d}`, r)), []byte("after "+strconv.FormatUint(r, 10))); err != nil {
			t.Fatal(err)
		}
	}
	if got := mustState(t, s); string(got) != "after 2" {
		t.Errorf("state = %q", got)
	}
	if got, err := s.Round(300); err != nil || string(got) != `{"round":300}` {
		t.Errorf("Round(300) = %q, %v", got, err)
	}
	if _, err := s.Round(3); !errors.Is(err, ErrNotFound) || err.Error() != "store: round 3: store: not found" {
		t.Errorf("Round(3) = %v", err)
	}
	// Replacing a round's result is allowed.
	if err := s.PutRound(5, []byte(`{"round":5,"final":true}`), nil); err != nil {
		t.Fatal(err)
	}
	var rounds []uint64
	var kept [][]byte
	if err := s.Rounds(2, func(r uint64, rec []byte) error {
		rounds = append(rounds, r)
		kept = append(kept, rec) // Rounds hands out copies
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rounds, []uint64{2, 5, 300}) {
		t.Errorf("Rounds(2) visited %v", rounds)
	}
	if string(kept[1]) != `{"round":5,"final":true}` || string(kept[2]) != `{"round":300}` {
		t.Errorf("kept records %q", kept)
	}
	stop := errors.New("stop")
	err := s.Rounds(0, func(r uint64, _ []byte) error { return stop })
	if !errors.Is(err, stop) || err.Error() != "store: rounds from 0: round 1: stop" {
		t.Errorf("Rounds with fn error = %v", err)
	}
	if err := s.Rounds(301, func(uint64, []byte) error { t.Error("fn called past the last round"); return nil }); err != nil {
		t.Error(err)
	}
	if err := s.PutRound(1, []byte{}, nil); err == nil {
		t.Error("PutRound with an empty record succeeded")
	}
	if st := s.Stats(); st.Rounds != 4 {
		t.Errorf("Stats().Rounds = %d", st.Rounds)
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for r := uint64(1); r <= 3; r++ {
		for _, c := range []string{"c1", "c2"} {
			if err := s.AcceptUpload(r, c, record(r, c, 5000), []byte("u")); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutGlobal(r, record(r, "global", 3000), []byte("g")); err != nil {
			t.Fatal(err)
		}
		if err := s.PutRound(r, record(r, "round", 100), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveState([]byte("final state")); err != nil {
		t.Fatal(err)
	}
	before := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, _, err := s.State(); err == nil {
		t.Error("State() after Close succeeded")
	}
	if err := s.AcceptUpload(9, "c", []byte("x"), nil); err == nil {
		t.Error("AcceptUpload after Close succeeded")
	}
	if st := s.Stats(); st.Err == nil {
		t.Error("Stats().Err is nil after Close")
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if after := s.Stats(); after != before {
		t.Errorf("Stats after reopening %+v, before %+v", after, before)
	}
	if got := mustState(t, s); string(got) != "final state" {
		t.Errorf("state %q", got)
	}
	for r := uint64(1); r <= 3; r++ {
		for _, c := range []string{"c1", "c2"} {
			if got, err := s.Upload(r, c); err != nil || !bytes.Equal(got, record(r, c, 5000)) {
				t.Errorf("Upload(%d, %s) after reopening: %v", r, c, err)
			}
		}
		if got, err := s.Global(r); err != nil || !bytes.Equal(got, record(r, "global", 3000)) {
			t.Errorf("Global(%d) after reopening: %v", r, err)
		}
		if got, err := s.Round(r); err != nil || !bytes.Equal(got, record(r, "round", 100)) {
			t.Errorf("Round(%d) after reopening: %v", r, err)
		}
	}
	if err := s.Check(); err != nil {
		t.Error(err)
	}
}

func TestSecondOpenTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s2, err := Open(path, Options{Timeout: 200 * time.Millisecond})
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Errorf("second Open gave up after %v, want about 200ms", waited)
	}
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another process holds the lock") {
		t.Errorf("second Open = %v", err)
	}
	s.Close()
	s2, err = Open(path, Options{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s2.Close()
}

func TestOpenRefusesForeignBolt(t *testing.T) {
	dir := t.TempDir()
	boltFile := func(name string, fill func(tx *bolt.Tx) error) string {
		path := filepath.Join(dir, name)
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(fill); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	meta := func(format string, schema []byte) func(tx *bolt.Tx) error {
		return func(tx *bolt.Tx) error {
			m, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			if err := m.Put(keyFormat, []byte(format)); err != nil {
				return err
			}
			return m.Put(keySchema, schema)
		}
	}
	for _, tc := range []struct {
		name string
		fill func(tx *bolt.Tx) error
		want string
		is   error
	}{
		{"other.db", func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("users")); return err },
			`not a kronfed store: a bbolt file with bucket "users" but no "meta" bucket`, ErrCorrupt},
		{"marker.db", meta("someone-else", encodeSchema(1)), `format marker "someone-else", want "kronfed-store"`, ErrCorrupt},
		{"nomarker.db", func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucketMeta); return err }, "no format marker", ErrCorrupt},
		{"newer.db", meta(formatMarker, encodeSchema(2)), "schema version 2 is newer than this build supports (1)", ErrSchema},
		{"zero.db", meta(formatMarker, encodeSchema(0)), "schema version 0 is invalid", ErrCorrupt},
		{"shortschema.db", meta(formatMarker, []byte("1")), "schema version is 1 bytes, want 8", ErrCorrupt},
		{"nobuckets.db", meta(formatMarker, encodeSchema(1)), `bucket "state" is missing`, ErrCorrupt},
	} {
		path := boltFile(tc.name, tc.fill)
		s, err := Open(path, Options{})
		if err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", tc.name)
			continue
		}
		if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "store: open "+path+": ") {
			t.Errorf("%s: Open = %v, want ...%s (%v)", tc.name, err, tc.want, tc.is)
		}
	}
	// An empty bbolt file (no buckets) is initialised.
	path := boltFile("empty.db", func(*bolt.Tx) error { return nil })
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("empty bbolt file: %v", err)
	}
	s.Close()
	// A zero-length file is not: a truncated state file must not silently
	// become a new, empty federation.
	path = filepath.Join(dir, "zero-length.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err = Open(path, Options{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "empty (0 bytes)") {
		t.Fatalf("zero-length file: %v", err)
	}
}

// filledStore writes a store with some of everything and returns its bytes
// and its high-water mark (the bytes its pages use; bbolt grows the file
// beyond that).
func filledStore(t testing.TB) ([]byte, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for r := uint64(1); r <= 4; r++ {
		for c := range 30 {
			name := fmt.Sprintf("client-%02d", c)
			if err := s.AcceptUpload(r, name, record(r, name, 200+c*300), []byte("state")); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutGlobal(r, record(r, "g", 20000), nil); err != nil {
			t.Fatal(err)
		}
	}
	// Enough round results for branch pages.
	for r := uint64(1); r <= 300; r++ {
		if err := s.PutRound(r, record(r, "round", 200), nil); err != nil {
			t.Fatal(err)
		}
	}
	var hwm int64
	if err := s.db.View(func(tx *bolt.Tx) error { hwm = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b, int(hwm)
}

// useDamaged opens a damaged file and exercises every read method (and
// Check when check is set); none may panic. It returns Open's error (nil if
// the damage went unnoticed by Open).
func useDamaged(t testing.TB, path string, check bool) error {
	t.Helper()
	s, err := Open(path, Options{NoSync: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer s.Close()
	_, _, _ = s.State()
	if check {
		_ = s.Check()
	}
	_ = s.Stats()
	for r := uint64(0); r <= 5; r++ {
		_, _ = s.UploadClients(r)
		_ = s.Uploads(r, func(string, []byte) error { return nil })
		_, _ = s.Upload(r, "client-03")
		_, _ = s.Global(r)
		_, _ = s.Round(r)
	}
	_, _, _ = s.LatestGlobal()
	_ = s.Rounds(0, func(uint64, []byte) error { return nil })
	return nil
}

func TestOpenDamagedFiles(t *testing.T) {
	good, hwm := filledStore(t)
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	// Random bytes of several sizes: never a bbolt file.
	for _, n := range []int{1, 100, 4095, 4096, 8192, 65536, 1 << 20} {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		err := useDamaged(t, write(fmt.Sprintf("random-%d.db", n), b), true)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%d random bytes: Open = %v, want ErrCorrupt", n, err)
		}
	}

	// Truncations of a good file below its high-water mark: refused with
	// a clear error.
	for _, n := range []int{10, 4096, 5000, 8192, 3 * 4096, hwm / 2, hwm - 4096, hwm - 1} {
		err := useDamaged(t, write(fmt.Sprintf("truncated-%d.db", n), good[:n]), true)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("file truncated to %d of %d bytes: Open = %v, want ErrCorrupt", n, hwm, err)
		}
		if n > 3*4096 && !strings.Contains(err.Error(), fmt.Sprintf("file is truncated: %d bytes, its meta page needs %d pages of 4096 bytes", n, hwm/4096)) {
			t.Errorf("truncated to %d: %v", n, err)
		}
	}
	// Cutting only the preallocated tail beyond it loses nothing.
	if hwm < len(good) {
		path := write("tail.db", good[:hwm])
		s, err := Open(path, Options{NoSync: true})
		if err != nil {
			t.Fatalf("file cut to its high-water mark: %v", err)
		}
		if err := s.Check(); err != nil {
			t.Error(err)
		}
		if st := s.Stats(); st.Uploads != 120 || st.Globals != 4 || st.Err != nil {
			t.Errorf("file cut to its high-water mark: %+v", st)
		}
		s.Close()
	}

	// Data pages overwritten with garbage, meta pages intact: Open may or
	// may not notice, but nothing panics.
	for i := range 40 {
		b := bytes.Clone(good)
		for range 1 + i%8 {
			page := 2 + rng.IntN(len(b)/4096-2)
			off := page*4096 + rng.IntN(4096-64)
			for j := range 16 + rng.IntN(48) {
				b[off+j] = byte(rng.Uint32())
			}
		}
		_ = useDamaged(t, write(fmt.Sprintf("scribbled-%d.db", i), b), false)
	}
	// Whole data pages of random bytes.
	for i := range 20 {
		b := bytes.Clone(good)
		page := 2 + rng.IntN(len(b)/4096-2)
		for j := page * 4096; j < (page+1)*4096; j++ {
			b[j] = byte(rng.Uint32())
		}
		_ = useDamaged(t, write(fmt.Sprintf("page-%d.db", i), b), false)
	}
}

// pageOfType returns the id of the first page of type typ ("branch",
// "leaf", "freelist") in a bbolt file's bytes.
func pageOfType(t *testing.T, b []byte, typ string) uint64 {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scan.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var found uint64
	err = db.View(func(tx *bolt.Tx) error {
		for id := 2; ; {
			p, err := tx.Page(id)
			if err != nil || p == nil {
				return fmt.Errorf("no %s page (%v)", typ, err)
			}
			if p.Type == typ {
				found = uint64(id)
				return nil
			}
			id += 1 + p.OverflowCount
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestOpenRefusesDamagedStructure damages a store's pages in ways that make
// bbolt itself loop forever, allocate without bound or fault, and checks
// that Open's structural check refuses them promptly with a clear error.
func TestOpenRefusesDamagedStructure(t *testing.T) {
	good, _ := filledStore(t)
	const ps = 4096
	dir := t.TempDir()
	branch := pageOfType(t, good, "branch")
	freelist := pageOfType(t, good, "freelist")
	for _, tc := range []struct {
		name   string
		damage func(b []byte)
		want   string
	}{
		{"branch page pointing at itself", func(b []byte) {
			ne.PutUint64(b[branch*ps+pageHeaderSize+8:], branch) // first element's child
		}, fmt.Sprintf("page %d is referenced twice", branch)},
		{"branch child past the high-water mark", func(b []byte) {
			ne.PutUint64(b[branch*ps+pageHeaderSize+8:], 1<<40)
		}, fmt.Sprintf("page %d is outside pages 2 to", 1<<40)},
		{"branch key past the page", func(b []byte) {
			ne.PutUint32(b[branch*ps+pageHeaderSize+4:], 1<<30) // ksize
		}, fmt.Sprintf("branch page %d element 0: key lies outside the page", branch)},
		{"page header naming another page", func(b []byte) {
			ne.PutUint64(b[branch*ps:], 12345)
		}, fmt.Sprintf("page %d identifies itself as page 12345", branch)},
		{"overflow past the end", func(b []byte) {
			ne.PutUint32(b[branch*ps+12:], 1<<31)
		}, "overflows"},
		{"freelist with 2^40 entries", func(b []byte) {
			ne.PutUint16(b[freelist*ps+10:], 0xFFFF)
			ne.PutUint64(b[freelist*ps+pageHeaderSize:], 1<<40)
		}, "ids do not fit"},
		{"freelist naming a page in use", func(b []byte) {
			ne.PutUint16(b[freelist*ps+10:], 1)
			ne.PutUint64(b[freelist*ps+pageHeaderSize:], branch)
		}, fmt.Sprintf("page %d is in use and on the freelist", branch)},
	} {
		b := bytes.Clone(good)
		tc.damage(b)
		path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		s, err := Open(path, Options{NoSync: true})
		if err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", tc.name)
			continue
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Open = %v, want ...%s", tc.name, err, tc.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%s: Open took %v", tc.name, d)
		}
	}
}

// TestLargeRecordsAreWrittenOnce checks that storing a large record does not
// rewrite its neighbours: bbolt rewrites whole leaf pages and keeps at least
// two elements on one, so plain values would be copied with each insert.
func TestLargeRecordsAreWrittenOnce(t *testing.T) {
	s := newStore(t, false)
	const size = 1 << 20
	alloc := func(write func() error) int64 {
		t.Helper()
		st := s.db.Stats()
		before := st.TxStats.GetPageAlloc()
		if err := write(); err != nil {
			t.Fatal(err)
		}
		st = s.db.Stats()
		return st.TxStats.GetPageAlloc() - before
	}
	for i, c := range []string{"a", "b", "c", "d", "e", "f"} {
		n := alloc(func() error { return s.AcceptUpload(1, c, record(1, c, size), []byte("state")) })
		if n > size+64<<10 {
			t.Errorf("upload %d of %d bytes allocated %d bytes of pages", i, size, n)
		}
	}
	for v := range uint64(4) {
		n := alloc(func() error { return s.PutGlobal(v, record(v, "global", size), nil) })
		if n > size+64<<10 {
			t.Errorf("global %d of %d bytes allocated %d bytes of pages", v, size, n)
		}
	}
}
