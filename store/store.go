package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors callers may test for with errors.Is. Every error a method returns
// is wrapped with the operation and its arguments.
var (
	// ErrDuplicate: an upload for (round, client) is already stored.
	ErrDuplicate = errors.New("store: duplicate upload")
	// ErrNotFound: no such record.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a global version is already stored with different bytes.
	ErrConflict = errors.New("store: global version already stored with different bytes")
	// ErrLocked: another process holds the file's lock.
	ErrLocked = errors.New("store: file locked by another process")
	// ErrCorrupt: the file is damaged or is not a kronfed store.
	ErrCorrupt = errors.New("store: damaged or foreign file")
	// ErrSchema: the file was written by a newer kronfed (a later schema).
	ErrSchema = errors.New("store: unsupported schema version")
)

// errLockTimeout: lockShared gave up waiting.
var errLockTimeout = errors.New("lock wait timed out")

// DefaultTimeout is how long Open waits for the file lock when
// Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// MaxRecordBytes is the largest record or snapshot bbolt can store in one
// value.
const MaxRecordBytes = bolt.MaxValueSize

// Options tune Open.
type Options struct {
	// Timeout is how long Open waits for the exclusive lock on the file
	// while another process holds it (default DefaultTimeout).
	Timeout time.Duration
	// NoSync skips fsync on commit: for tests and benchmarks only (a power
	// failure may lose acknowledged writes).
	NoSync bool
}

// Store is an open state file. Its methods are safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
}

// Open opens the state file at path, creating it (mode 0600) and its
// buckets when it does not exist. It refuses a file that is not a kronfed
// store (ErrCorrupt) or has a newer schema (ErrSchema), and a file another process has
// open (ErrLocked, after waiting opts.Timeout).
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("store: open: empty path")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	st, statErr := os.Stat(path)
	created := errors.Is(statErr, fs.ErrNotExist)
	if statErr == nil && st.Mode().IsRegular() && st.Size() == 0 {
		// bbolt would initialize it as a new, empty store: a truncated
		// state file must not silently become a new federation.
		return nil, fmt.Errorf("store: open %s: the file is empty (0 bytes): not a store, or one truncated; restore it or remove it: %w", path, ErrCorrupt)
	}

	locked := func() error {
		return fmt.Errorf("store: open %s: another process holds the lock on this file (waited %v; is a coordinator already running on it?): %w",
			path, timeout, ErrLocked)
	}
	// Check the page structure before bbolt maps the file (see verify.go).
	deadline := time.Now().Add(timeout)
	if err := verifyPath(path, timeout); err != nil {
		if errors.Is(err, errLockTimeout) {
			return nil, locked()
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db, err := openBolt(path, max(time.Until(deadline), 100*time.Millisecond), opts.NoSync)
	if err != nil {
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return nil, locked()
		case errors.Is(err, ErrCorrupt):
			return nil, fmt.Errorf("store: open %s: %w", path, err)
		case !isIOError(err):
			// bbolt's own complaints about the file's contents
			// (ErrInvalid, ErrChecksum, ErrVersionMismatch, "file size
			// too small", ...).
			return nil, fmt.Errorf("store: open %s: not a bbolt file, or damaged: %v: %w", path, err, ErrCorrupt)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	s := &Store{db: db, path: path}
	if err := s.init(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if created && !opts.NoSync {
		if err := syncDir(filepath.Dir(path)); err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("store: open %s: sync directory: %w", path, err)
		}
	}
	return s, nil
}

// openBolt opens the bbolt file, turning a panic or memory fault inside
// bbolt (it trusts its file) into an error; the file it had opened is then
// closed, which also releases its lock.
func openBolt(path string, timeout time.Duration, noSync bool) (db *bolt.DB, err error) {
	var file *os.File
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			size := "unknown size"
			if file != nil {
				if fi, err := file.Stat(); err == nil {
					size = fmt.Sprintf("%d bytes", fi.Size())
				}
				_ = file.Close()
			}
			db, err = nil, fmt.Errorf("file damaged or truncated (%s): bbolt: %v: %w", size, r, ErrCorrupt)
		}
	}()
	return bolt.Open(path, 0o600, &bolt.Options{
		Timeout:      timeout,
		NoSync:       noSync,
		FreelistType: bolt.FreelistMapType,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	})
}

// init checks the format marker, schema and buckets of an existing store, or
// creates them in a file without buckets.
func (s *Store) init() error {
	fresh := false
	err := s.view(func(tx *bolt.Tx, _ *bool) error {
		fi, err := os.Stat(s.path)
		if err != nil {
			return err
		}
		if want := tx.Size(); fi.Size() < want {
			return fmt.Errorf("file is truncated: %d bytes, its meta page needs %d: %w", fi.Size(), want, ErrCorrupt)
		}
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if k, _ := tx.Cursor().First(); k != nil {
				return fmt.Errorf("not a kronfed store: a bbolt file with bucket %q but no %q bucket: %w", k, bucketMeta, ErrCorrupt)
			}
			fresh = true
			return nil
		}
		if _, err := decodeMeta(meta.Get(keyFormat), meta.Get(keySchema)); err != nil {
			return err
		}
		for _, name := range dataBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("bucket %q is missing: %w", name, ErrCorrupt)
			}
		}
		return nil
	})
	if err != nil || !fresh {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucket(bucketMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(keyFormat, []byte(formatMarker)); err != nil {
			return err
		}
		if err := meta.Put(keySchema, encodeSchema(SchemaVersion)); err != nil {
			return err
		}
		for _, name := range dataBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
}

// isIOError reports whether err came from the operating system rather than
// from bbolt's reading of the file's contents.
func isIOError(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	return errors.As(err, &pe) || errors.As(err, &errno)
}

// syncDir fsyncs a directory so a file just created in it keeps its name
// after a power failure.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Close closes the file and releases its lock. Closing twice is harmless.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close %s: %w", s.path, err)
	}
	return nil
}

// Path is the file's path as given to Open.
func (s *Store) Path() string { return s.path }

// Check runs bbolt's full consistency check (every page reachable or free
// exactly once, keys ordered) and returns the first problem found, wrapping
// ErrCorrupt. It reads the whole tree and touches every key and both ends of
// every value, so it costs time proportional to the number of pages and
// records, not to their size.
//
// Open has already checked the page structure (see "Damaged files" in the
// package documentation), so on a file that opened, bbolt's checker cannot
// fault or loop. It runs in a goroutine of its own, though, where a fault
// could not be turned into an error, so for damage done to the file after
// Open, Check first walks every bucket itself, in a goroutine that does turn
// faults into errors.
func (s *Store) Check() error {
	err := s.view(func(tx *bolt.Tx, _ *bool) error {
		if err := tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			_, err := walk(b, name, 0)
			return err
		}); err != nil {
			return err
		}
		var first error
		for err := range tx.Check() {
			if first == nil {
				first = err
			}
		}
		if first != nil {
			return fmt.Errorf("%v: %w", first, ErrCorrupt)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: check %s: %w", s.path, err)
	}
	return nil
}

// maxDepth bounds the nesting walk accepts; this layout nests two deep.
const maxDepth = 4

// walk visits every key of b and its nested buckets, reading every byte of
// each key and the first and last byte of each value, so that a key or value
// reaching outside the file faults here, where it becomes an error. It
// returns a checksum of what it read so that the reads are not optimised
// away.
func walk(b *bolt.Bucket, name []byte, depth int) (byte, error) {
	if depth >= maxDepth {
		return 0, fmt.Errorf("bucket %x nested %d deep: %w", truncate(name), depth, ErrCorrupt)
	}
	var sum byte
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		for _, x := range k {
			sum ^= x
		}
		if len(v) > 0 {
			sum ^= v[0] ^ v[len(v)-1]
			continue
		}
		if v != nil {
			continue // an empty value
		}
		nb := b.Bucket(k)
		if nb == nil {
			return 0, fmt.Errorf("key %x in bucket %x has no value and is not a bucket: %w", truncate(k), truncate(name), ErrCorrupt)
		}
		x, err := walk(nb, k, depth+1)
		if err != nil {
			return 0, err
		}
		sum ^= x
	}
	return sum, nil
}

// view runs fn in a read transaction. A panic or memory fault raised by
// bbolt on a damaged file becomes an error wrapping ErrCorrupt; fn sets
// *inCaller while it runs caller code, whose panics propagate untouched.
func (s *Store) view(fn func(tx *bolt.Tx, inCaller *bool) error) (err error) {
	inCaller := false
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if inCaller {
			return // the caller's own panic: not ours to stop
		}
		if r := recover(); r != nil {
			err = fmt.Errorf("bbolt: %v: %w", r, ErrCorrupt)
		}
	}()
	return s.db.View(func(tx *bolt.Tx) error { return fn(tx, &inCaller) })
}

// update runs fn in a read-write transaction and commits it (with fsync
// unless NoSync). Panics and faults from bbolt become errors as in view;
// bbolt rolls the transaction back.
func (s *Store) update(fn func(tx *bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("bbolt: %v: %w", r, ErrCorrupt)
		}
	}()
	return s.db.Update(fn)
}

// bucket returns a top-level bucket, or an error if a damaged file lacks it.
func bucket(tx *bolt.Tx, name []byte) (*bolt.Bucket, error) {
	b := tx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("bucket %q is missing: %w", name, ErrCorrupt)
	}
	return b, nil
}

// checkRecord validates a record about to be stored.
func checkRecord(what string, rec []byte) error {
	if len(rec) == 0 {
		return fmt.Errorf("empty %s", what)
	}
	if int64(len(rec)) > MaxRecordBytes {
		return fmt.Errorf("%s of %d bytes exceeds the %d-byte limit", what, len(rec), int64(MaxRecordBytes))
	}
	return nil
}

// Stats describes the file.
type Stats struct {
	FileBytes    int64 // size of the file on disk
	StateBytes   int   // size of the state snapshot (0 when none)
	UploadRounds int   // rounds with at least one stored upload
	Uploads      int   // stored uploads over all rounds
	UploadBytes  int64 // their total size
	Globals      int   // stored global adapter versions
	Rounds       int   // stored round results
	Err          error // set when the counts could not be read (closed or damaged store)
}

// Stats reports the file size and the number of records in each bucket. It
// walks the keys (not the values) of every bucket.
func (s *Store) Stats() Stats {
	var st Stats
	if fi, err := os.Stat(s.path); err == nil {
		st.FileBytes = fi.Size()
	}
	err := s.view(func(tx *bolt.Tx, _ *bool) error {
		sb, err := bucket(tx, bucketState)
		if err != nil {
			return err
		}
		st.StateBytes = len(sb.Get(keySnapshot))
		for _, b := range []struct {
			name []byte
			n    *int
		}{{bucketGlobals, &st.Globals}, {bucketRounds, &st.Rounds}} {
			bk, err := bucket(tx, b.name)
			if err != nil {
				return err
			}
			c := bk.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				*b.n++
			}
		}
		ub, err := bucket(tx, bucketUploads)
		if err != nil {
			return err
		}
		c := ub.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			rb, err := roundBucket(ub, k, v)
			if err != nil {
				return err
			}
			st.UploadRounds++
			rc := rb.Cursor()
			for ck, _ := rc.First(); ck != nil; ck, _ = rc.Next() {
				v, err := getBlob(rb, ck)
				if err != nil {
					return err
				}
				st.Uploads++
				st.UploadBytes += int64(len(v))
			}
		}
		return nil
	})
	if err != nil {
		st.Err = fmt.Errorf("store: stats %s: %w", s.path, err)
	}
	return st
}
