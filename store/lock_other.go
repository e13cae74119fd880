//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package store

import (
	"os"
	"time"
)

// lockShared does nothing where flock is unavailable: the structural check
// then runs without a lock, and bbolt's own lock still keeps a second
// writer out.
func lockShared(*os.File, time.Duration) error { return nil }
