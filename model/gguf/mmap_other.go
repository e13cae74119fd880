//go:build !unix

package gguf

import (
	"errors"
	"os"
)

// mmapFile is not implemented off unix; Open then reads the whole file.
func mmapFile(*os.File, int64) ([]byte, error) {
	return nil, errors.New("mmap not supported on this platform")
}

func munmap([]byte) error { return nil }
