package store

import (
	"bytes"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// testHookAcceptUpload, when set by a test, runs inside AcceptUpload's
// transaction after the upload is written and before the snapshot is; an
// error from it aborts the transaction.
var testHookAcceptUpload func() error

// Large records (uploads, globals) are each kept in a bucket of their own,
// under keyRecord, rather than as a value beside their neighbours: bbolt
// keeps at least two elements on a leaf page and rewrites a whole leaf page
// whenever one of its elements changes, so a record stored as a plain value
// would have its neighbour (another upload of hundreds of MB) copied and
// rewritten with it. In a bucket of its own, a record's pages are written
// once, and an insert rewrites only the small leaf of bucket headers.

// putBlob stores rec as the record of a new bucket key under parent. rec is
// not copied: bbolt writes it at commit.
func putBlob(parent *bolt.Bucket, key, rec []byte) error {
	b, err := parent.CreateBucket(key)
	if err != nil {
		return err
	}
	return b.Put(keyRecord, rec)
}

// getBlob returns the record stored by putBlob under key (pointing into the
// memory map), or nil when key is absent.
func getBlob(parent *bolt.Bucket, key []byte) ([]byte, error) {
	b := parent.Bucket(key)
	if b == nil {
		if parent.Get(key) != nil {
			return nil, fmt.Errorf("key %x holds a value, not a record bucket: %w", truncate(key), ErrCorrupt)
		}
		return nil, nil
	}
	v := b.Get(keyRecord)
	if v == nil {
		return nil, fmt.Errorf("record bucket %x has no record: %w", truncate(key), ErrCorrupt)
	}
	return v, nil
}

// checkState validates a snapshot passed to a combined write: nil means
// "leave the snapshot as it is", anything else must be a storable record.
func checkState(state []byte) error {
	if state == nil {
		return nil
	}
	return checkRecord("state snapshot", state)
}

// putState replaces the snapshot inside tx (nothing when state is nil).
func putState(tx *bolt.Tx, state []byte) error {
	if state == nil {
		return nil
	}
	sb, err := bucket(tx, bucketState)
	if err != nil {
		return err
	}
	if err := sb.Put(keySnapshot, state); err != nil {
		return fmt.Errorf("state snapshot: %w", err)
	}
	return nil
}

// State returns a copy of the state snapshot; ok is false when none has been
// saved yet.
func (s *Store) State() (state []byte, ok bool, err error) {
	err = s.view(func(tx *bolt.Tx, _ *bool) error {
		sb, err := bucket(tx, bucketState)
		if err != nil {
			return err
		}
		if v := sb.Get(keySnapshot); v != nil {
			state, ok = bytes.Clone(v), true
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("store: state: %w", err)
	}
	return state, ok, nil
}

// SaveState replaces the state snapshot (which must not be empty) and
// returns once it is durable.
func (s *Store) SaveState(state []byte) error {
	err := checkRecord("state snapshot", state)
	if err == nil {
		err = s.update(func(tx *bolt.Tx) error { return putState(tx, state) })
	}
	if err != nil {
		return fmt.Errorf("store: save state: %w", err)
	}
	return nil
}

// AcceptUpload stores client's upload record for round and, in the same
// transaction, replaces the state snapshot with state (nil leaves the
// snapshot unchanged). It returns once both are durable; a crash before
// that leaves neither. If the client already has an upload in the round it
// returns ErrDuplicate and writes nothing, snapshot included.
//
// record is written without being copied: the caller must not modify it
// until AcceptUpload returns.
func (s *Store) AcceptUpload(round uint64, client string, record []byte, state []byte) error {
	err := checkClient(client)
	if err == nil {
		err = checkRecord("upload record", record)
	}
	if err == nil {
		err = checkState(state)
	}
	if err == nil {
		err = s.update(func(tx *bolt.Tx) error {
			ub, err := bucket(tx, bucketUploads)
			if err != nil {
				return err
			}
			rb, err := ub.CreateBucketIfNotExists(numKey(round))
			if err != nil {
				return fmt.Errorf("round bucket: %w", err)
			}
			key := []byte(client)
			if old, err := getBlob(rb, key); err != nil {
				return err
			} else if old != nil {
				return ErrDuplicate
			}
			if err := putBlob(rb, key, record); err != nil {
				return err
			}
			if testHookAcceptUpload != nil {
				if err := testHookAcceptUpload(); err != nil {
					return err
				}
			}
			return putState(tx, state)
		})
	}
	if err != nil {
		return fmt.Errorf("store: accept upload round %d client %q: %w", round, client, err)
	}
	return nil
}

// uploadRound returns the nested bucket of round's uploads, or nil when the
// round has none.
func uploadRound(tx *bolt.Tx, round uint64) (*bolt.Bucket, error) {
	ub, err := bucket(tx, bucketUploads)
	if err != nil {
		return nil, err
	}
	k := numKey(round)
	if rb := ub.Bucket(k); rb != nil {
		return rb, nil
	}
	if ub.Get(k) != nil {
		return nil, fmt.Errorf("uploads: round key %x holds a value, not a bucket: %w", k, ErrCorrupt)
	}
	return nil, nil
}

// Upload returns a copy of client's upload record for round, or an error
// wrapping ErrNotFound.
func (s *Store) Upload(round uint64, client string) ([]byte, error) {
	var rec []byte
	err := checkClient(client)
	if err == nil {
		err = s.view(func(tx *bolt.Tx, _ *bool) error {
			rb, err := uploadRound(tx, round)
			if err != nil {
				return err
			}
			if rb == nil {
				return ErrNotFound
			}
			v, err := getBlob(rb, []byte(client))
			if err != nil {
				return err
			}
			if v == nil {
				return ErrNotFound
			}
			rec = bytes.Clone(v)
			return nil
		})
	}
	if err != nil {
		return nil, fmt.Errorf("store: upload round %d client %q: %w", round, client, err)
	}
	return rec, nil
}

// Uploads calls fn for each upload of round, in client-name (byte) order,
// all within one read transaction, and stops at fn's first error, which it
// returns wrapped.
//
// record is NOT a copy: it points into bbolt's read-only memory map, is
// valid only while fn runs, and must not be modified (writing to it
// crashes the process). Copy it (bytes.Clone) to keep it. This lets an
// aggregator stream uploads of hundreds of MB without copying them.
//
// fn must not call the Store's write methods (the write may have to wait for
// this read transaction to end). A long-running fn delays writers that need
// to grow the file.
func (s *Store) Uploads(round uint64, fn func(client string, record []byte) error) error {
	err := s.view(func(tx *bolt.Tx, inCaller *bool) error {
		rb, err := uploadRound(tx, round)
		if err != nil || rb == nil {
			return err
		}
		c := rb.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			client, err := decodeClientKey(k)
			if err != nil {
				return err
			}
			v, err := getBlob(rb, k)
			if err != nil {
				return fmt.Errorf("client %q: %w", client, err)
			}
			*inCaller = true
			err = fn(client, v)
			*inCaller = false
			if err != nil {
				return fmt.Errorf("client %q: %w", client, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: uploads round %d: %w", round, err)
	}
	return nil
}

// UploadClients lists the clients with an upload in round, sorted by name;
// empty (nil) when there are none.
func (s *Store) UploadClients(round uint64) ([]string, error) {
	var out []string
	err := s.view(func(tx *bolt.Tx, _ *bool) error {
		rb, err := uploadRound(tx, round)
		if err != nil || rb == nil {
			return err
		}
		c := rb.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			client, err := decodeClientKey(k)
			if err != nil {
				return err
			}
			out = append(out, client)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: upload clients round %d: %w", round, err)
	}
	return out, nil
}

// DeleteUploads drops every upload of the rounds before beforeRound, in one
// transaction, and returns how many uploads it removed. bbolt reuses the
// freed pages; the file does not shrink.
func (s *Store) DeleteUploads(beforeRound uint64) (int, error) {
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		ub, err := bucket(tx, bucketUploads)
		if err != nil {
			return err
		}
		limit := numKey(beforeRound)
		var drop [][]byte
		c := ub.Cursor()
		for k, v := c.First(); k != nil && bytes.Compare(k, limit) < 0; k, v = c.Next() {
			rb, err := roundBucket(ub, k, v)
			if err != nil {
				return err
			}
			rc := rb.Cursor()
			for ck, _ := rc.First(); ck != nil; ck, _ = rc.Next() {
				n++
			}
			drop = append(drop, bytes.Clone(k))
		}
		for _, k := range drop {
			if err := ub.DeleteBucket(k); err != nil {
				return fmt.Errorf("round key %x: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: delete uploads before round %d: %w", beforeRound, err)
	}
	return n, nil
}

// PutGlobal stores global adapter version and, in the same transaction,
// replaces the state snapshot with state (nil leaves it unchanged). Storing
// the same bytes under an existing version again is allowed (the snapshot is
// still replaced); different bytes are refused with ErrConflict and nothing
// is written. record is not copied: do not modify it until PutGlobal
// returns.
func (s *Store) PutGlobal(version uint64, record []byte, state []byte) error {
	err := checkRecord("global record", record)
	if err == nil {
		err = checkState(state)
	}
	if err == nil {
		err = s.update(func(tx *bolt.Tx) error {
			gb, err := bucket(tx, bucketGlobals)
			if err != nil {
				return err
			}
			k := numKey(version)
			old, err := getBlob(gb, k)
			switch {
			case err != nil:
				return err
			case old == nil:
				if err := putBlob(gb, k, record); err != nil {
					return err
				}
			case !bytes.Equal(old, record):
				return ErrConflict
			}
			return putState(tx, state)
		})
	}
	if err != nil {
		return fmt.Errorf("store: put global version %d: %w", version, err)
	}
	return nil
}

// Global returns a copy of global adapter version, or an error wrapping
// ErrNotFound.
func (s *Store) Global(version uint64) ([]byte, error) {
	var rec []byte
	err := s.view(func(tx *bolt.Tx, _ *bool) error {
		gb, err := bucket(tx, bucketGlobals)
		if err != nil {
			return err
		}
		v, err := getBlob(gb, numKey(version))
		if err != nil {
			return err
		}
		if v == nil {
			return ErrNotFound
		}
		rec = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: global version %d: %w", version, err)
	}
	return rec, nil
}

// LatestGlobal returns the highest stored global version and a copy of its
// record, or an error wrapping ErrNotFound when there is none.
func (s *Store) LatestGlobal() (version uint64, record []byte, err error) {
	err = s.view(func(tx *bolt.Tx, _ *bool) error {
		gb, err := bucket(tx, bucketGlobals)
		if err != nil {
			return err
		}
		k, _ := gb.Cursor().Last()
		if k == nil {
			return ErrNotFound
		}
		if version, err = decodeNumKey(k); err != nil {
			return fmt.Errorf("globals: %w", err)
		}
		v, err := getBlob(gb, k)
		if err != nil {
			return fmt.Errorf("globals: %w", err)
		}
		record = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("store: latest global: %w", err)
	}
	return version, record, nil
}

// PruneGlobals keeps the keep highest global versions (keep ≥ 1), deletes
// the older ones in one transaction and returns how many it deleted.
func (s *Store) PruneGlobals(keep int) (int, error) {
	if keep < 1 {
		return 0, fmt.Errorf("store: prune globals keeping %d: must keep at least the latest version", keep)
	}
	n := 0
	err := s.update(func(tx *bolt.Tx) error {
		gb, err := bucket(tx, bucketGlobals)
		if err != nil {
			return err
		}
		var keys [][]byte
		c := gb.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			keys = append(keys, bytes.Clone(k))
		}
		if len(keys) <= keep {
			return nil
		}
		for _, k := range keys[:len(keys)-keep] {
			if err := gb.DeleteBucket(k); err != nil {
				return fmt.Errorf("key %x: %w", k, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune globals keeping %d: %w", keep, err)
	}
	return n, nil
}

// PutRound stores (or replaces) round's result and, in the same transaction,
// replaces the state snapshot with state (nil leaves it unchanged). record
// is not copied: do not modify it until PutRound returns.
func (s *Store) PutRound(round uint64, record []byte, state []byte) error {
	err := checkRecord("round record", record)
	if err == nil {
		err = checkState(state)
	}
	if err == nil {
		err = s.update(func(tx *bolt.Tx) error {
			rb, err := bucket(tx, bucketRounds)
			if err != nil {
				return err
			}
			if err := rb.Put(numKey(round), record); err != nil {
				return err
			}
			return putState(tx, state)
		})
	}
	if err != nil {
		return fmt.Errorf("store: put round %d: %w", round, err)
	}
	return nil
}

// Round returns a copy of round's result, or an error wrapping ErrNotFound.
func (s *Store) Round(round uint64) ([]byte, error) {
	var rec []byte
	err := s.view(func(tx *bolt.Tx, _ *bool) error {
		rb, err := bucket(tx, bucketRounds)
		if err != nil {
			return err
		}
		v := rb.Get(numKey(round))
		if v == nil {
			return ErrNotFound
		}
		rec = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: round %d: %w", round, err)
	}
	return rec, nil
}

// Rounds calls fn for every stored round result with round ≥ from, in round
// order, within one read transaction, and stops at fn's first error, which
// it returns wrapped. Unlike Uploads, record is a copy (round results are
// small) that fn may keep. fn must not call the Store's write methods.
func (s *Store) Rounds(from uint64, fn func(round uint64, record []byte) error) error {
	err := s.view(func(tx *bolt.Tx, inCaller *bool) error {
		rb, err := bucket(tx, bucketRounds)
		if err != nil {
			return err
		}
		c := rb.Cursor()
		for k, v := c.Seek(numKey(from)); k != nil; k, v = c.Next() {
			round, err := decodeNumKey(k)
			if err != nil {
				return fmt.Errorf("rounds: %w", err)
			}
			if v == nil {
				return fmt.Errorf("rounds: round %d holds a bucket, not a record: %w", round, ErrCorrupt)
			}
			rec := bytes.Clone(v)
			*inCaller = true
			err = fn(round, rec)
			*inCaller = false
			if err != nil {
				return fmt.Errorf("round %d: %w", round, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: rounds from %d: %w", from, err)
	}
	return nil
}
