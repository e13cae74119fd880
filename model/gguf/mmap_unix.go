//go:build unix

package gguf

import (
	"errors"
	"math"
	"os"
	"syscall"
)

// mmapFile maps the whole file read-only. MAP_SHARED rather than private:
// we never write, and a shared mapping does not reserve swap.
func mmapFile(f *os.File, size int64) ([]byte, error) {
	if size <= 0 || uint64(size) > math.MaxInt {
		return nil, errors.New("file size cannot be mapped")
	}
	return syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
}

func munmap(b []byte) error {
	return syscall.Munmap(b)
}
