//go:build !unix

package safetensors

import (
	"errors"
	"os"
)

// mmapFile is not implemented off unix; Open then reads with ReadAt.
func mmapFile(*os.File, int64) ([]byte, error) {
	return nil, errors.New("mmap not supported on this platform")
}

func munmap([]byte) error { return nil }
