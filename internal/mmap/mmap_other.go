//go:build !unix

package mmap

import (
	"errors"
	"os"
)

// File is not implemented off unix; callers fall back to reading.
func File(*os.File, int64) ([]byte, error) {
	return nil, errors.New("mmap not supported on this platform")
}

// Unmap is a no-op off unix.
func Unmap([]byte) error { return nil }
