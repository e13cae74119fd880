package store

import (
	"encoding/binary"
	"fmt"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// SchemaVersion is the layout this build writes and reads.
const SchemaVersion uint64 = 1

// MaxClientName is the longest client name, in bytes.
const MaxClientName = 255

const formatMarker = "kronfed-store"

var (
	bucketMeta    = []byte("meta")
	bucketState   = []byte("state")
	bucketUploads = []byte("uploads")
	bucketGlobals = []byte("globals")
	bucketRounds  = []byte("rounds")

	// dataBuckets are the top-level buckets besides meta.
	dataBuckets = [][]byte{bucketState, bucketUploads, bucketGlobals, bucketRounds}

	keyFormat   = []byte("format")
	keySchema   = []byte("schema")
	keySnapshot = []byte("snapshot")
	keyRecord   = []byte("record")
)

// encodeSchema encodes a schema version for the meta bucket.
func encodeSchema(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// decodeMeta checks the meta bucket's format marker and schema version (as
// read from the file; nil when absent) and returns the schema version.
func decodeMeta(format, schema []byte) (uint64, error) {
	if format == nil {
		return 0, fmt.Errorf("not a kronfed store: no format marker in bucket %q: %w", bucketMeta, ErrCorrupt)
	}
	if string(format) != formatMarker {
		return 0, fmt.Errorf("not a kronfed store: format marker %q, want %q: %w", truncate(format), formatMarker, ErrCorrupt)
	}
	if len(schema) != 8 {
		return 0, fmt.Errorf("schema version is %d bytes, want 8: %w", len(schema), ErrCorrupt)
	}
	v := binary.BigEndian.Uint64(schema)
	switch {
	case v == 0:
		return 0, fmt.Errorf("schema version 0 is invalid: %w", ErrCorrupt)
	case v > SchemaVersion:
		return 0, fmt.Errorf("schema version %d is newer than this build supports (%d); use a newer kronfed: %w", v, SchemaVersion, ErrSchema)
	}
	return v, nil
}

// truncate shortens foreign bytes quoted in an error message.
func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// numKey encodes a round or version number as an 8-byte big-endian key, so
// that bbolt's byte order is numeric order.
func numKey(n uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), n) }

// decodeNumKey decodes a key written by numKey.
func decodeNumKey(k []byte) (uint64, error) {
	if len(k) != 8 {
		return 0, fmt.Errorf("key %x is %d bytes, want 8: %w", truncate(k), len(k), ErrCorrupt)
	}
	return binary.BigEndian.Uint64(k), nil
}

// checkClient validates a client name used as a key.
func checkClient(c string) error {
	switch {
	case c == "":
		return fmt.Errorf("empty client name")
	case len(c) > MaxClientName:
		return fmt.Errorf("client name of %d bytes is longer than %d", len(c), MaxClientName)
	case strings.IndexByte(c, 0) >= 0:
		return fmt.Errorf("client name %q contains a NUL byte", c)
	}
	return nil
}

// decodeClientKey validates a client-name key read from the file.
func decodeClientKey(k []byte) (string, error) {
	c := string(k)
	if err := checkClient(c); err != nil {
		return "", fmt.Errorf("stored %v: %w", err, ErrCorrupt)
	}
	return c, nil
}

// roundBucket returns the nested bucket of one round's uploads, given the
// key and value of its entry in the uploads bucket (a nested bucket has a
// nil value in a cursor).
func roundBucket(uploads *bolt.Bucket, k, v []byte) (*bolt.Bucket, error) {
	if _, err := decodeNumKey(k); err != nil {
		return nil, fmt.Errorf("uploads: %w", err)
	}
	if v != nil {
		return nil, fmt.Errorf("uploads: round key %x holds a value, not a bucket: %w", k, ErrCorrupt)
	}
	rb := uploads.Bucket(k)
	if rb == nil {
		return nil, fmt.Errorf("uploads: round key %x is not a bucket: %w", k, ErrCorrupt)
	}
	return rb, nil
}
