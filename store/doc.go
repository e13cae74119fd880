// Package store keeps the coordinator's durable state in one bbolt file:
// the state machine's snapshot, accepted client uploads (still encrypted,
// opaque to this package), round results and versioned global adapters.
//
// The protocol layer (package fed) encodes every record; store never
// interprets a record's bytes and never imports fed.
//
// # Durability contract
//
// Every method that writes runs exactly one bbolt read-write transaction and
// returns only after that transaction has committed. A bbolt commit writes
// the new pages, fsyncs the file, then writes the meta page that makes them
// reachable and fsyncs again; until that second fsync the previous meta page
// is the valid one. So when a write method returns nil the data is on disk,
// and when it returns an error (or the process dies before it returns)
// nothing of that call is visible.
//
// The coordinator therefore acknowledges an upload to a client only after
// AcceptUpload has returned nil. AcceptUpload, PutGlobal and PutRound take the
// state machine's new snapshot as well as the record and write both in the
// same transaction: after a crash, at any instant, the snapshot's idea of
// which uploads were accepted, which global version is current and which
// rounds are finished agrees with the records in the file. A kill -9 at any
// point leaves a file that opens, passes bbolt's consistency check and holds
// every acknowledged write (see TestCrashKeepsAcknowledgedUploads).
//
// Options.NoSync turns off the fsyncs; it is for tests and benchmarks only,
// and a power failure may then lose or tear committed data (a process crash
// still cannot, since the pages are in the kernel's page cache).
//
// When Open creates the file it also fsyncs the directory holding it, so the
// new file's name survives a power failure too.
//
// # Bucket layout
//
// Keys that are numbers are 8-byte big-endian uint64s, so bbolt's byte order
// is numeric order and iteration runs from old to new.
//
//	meta     "format" → "kronfed-store"              (format marker)
//	         "schema" → uint64 big-endian, 1           (schema version)
//	state    "snapshot" → state machine snapshot       (opaque)
//	uploads  round → bucket:                           (one per round)
//	                  client name → bucket:            (client-name order)
//	                                 "record" → upload (opaque)
//	globals  version → bucket: "record" → global adapter (opaque)
//	rounds   round → round result                      (opaque)
//
// Uploads and global adapters, which can be hundreds of MB, each sit in a
// bucket of their own rather than beside their neighbours: bbolt rewrites a
// whole leaf page when any of its elements changes and keeps at least two
// elements on a leaf, so plain values would make every insert copy and
// rewrite the previous records of the round (quadratic in the round's
// size). This way each record's pages are written once, and an insert
// rewrites only small leaves of bucket headers
// (TestLargeRecordsAreWrittenOnce). Round results are small and are plain
// values.
//
// Client names are 1–255 bytes without NUL. Open refuses a file whose meta
// bucket is missing (a foreign bbolt file), whose marker differs, or whose
// schema is newer than this build's; a file with no buckets at all (a new
// or empty bbolt file) is initialised.
//
// # Damaged files
//
// bbolt trusts its file: on a damaged page it may panic, fault on its
// memory map, allocate without bound or loop forever (a branch page that
// points back at an ancestor). Before bbolt maps a file, Open therefore
// reads its page structure itself, with bounds checks and under a shared
// lock: both meta pages (magic, version, checksum), the file length against
// the high-water mark, the freelist, and every branch and leaf page
// reachable from the root, each visited at most once (headers, element
// arrays and nested-bucket headers; never the values, so the cost is one
// small read per tree page). Any problem is an error wrapping ErrCorrupt
// that names the page. As a second line of defence, every method turns a
// panic or memory fault raised by bbolt while reading the file into an
// error wrapping ErrCorrupt. Panics raised by a caller's callback (Uploads,
// Rounds) are not touched and propagate as usual.
//
// Damage inside values (the records themselves) is not detected here; the
// records carry their own integrity (encryption, signatures) and are
// checked by their decoders.
//
// # Concurrency
//
// A Store is safe for concurrent use. Writes are serialised by bbolt; reads
// run in parallel with each other and with a write. Only one process may
// open a file at a time (an exclusive flock); a second Open waits
// Options.Timeout and then fails with ErrLocked.
package store
