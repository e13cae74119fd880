//go:build unix

package mmap

import (
	"errors"
	"math"
	"os"
	"syscall"
)

// File maps the whole of f (size bytes) read-only. MAP_SHARED rather than
// private: nothing writes, and a shared mapping does not reserve swap.
func File(f *os.File, size int64) ([]byte, error) {
	if size <= 0 || uint64(size) > math.MaxInt {
		return nil, errors.New("file size cannot be mapped")
	}
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
}

// Unmap releases a mapping made by File.
func Unmap(b []byte) error {
	return syscall.Munmap(b)
}
