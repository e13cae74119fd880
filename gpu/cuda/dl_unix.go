//go:build !windows && !nocuda

package cuda

import (
	"fmt"
	"runtime"

	"github.com/ebitengine/purego"
)

// dlopen loads path (a file or a bare soname) with RTLD_NOW, so that a
// missing dependency fails here with the loader's message rather than at the
// first call, and RTLD_GLOBAL, so that libraries loaded later (libcublas
// after libcublasLt, NVRTC's builtins) resolve against it.
//
// dlerror's message is per thread and purego reads it in a second call, so
// the goroutine stays on one thread for both.
func dlopen(path string) (uintptr, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_GLOBAL)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, cleanDlerror(path, err))
	}
	return h, nil
}

// cleanDlerror drops the path glibc already puts at the front of its message,
// since dlopen's wrapper adds it back.
func cleanDlerror(path string, err error) error {
	msg := err.Error()
	if len(msg) > len(path)+2 && msg[:len(path)] == path && msg[len(path)] == ':' {
		return dlError(msg[len(path)+2:])
	}
	return err
}

type dlError string

func (e dlError) Error() string { return string(e) }

func dlsym(handle uintptr, name string) (uintptr, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	p, err := purego.Dlsym(handle, name)
	if err != nil {
		return 0, err
	}
	return p, nil
}
