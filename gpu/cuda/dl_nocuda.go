//go:build nocuda

package cuda

import "errors"

var errNoCUDA = errors.New("not built into this binary (built with -tags nocuda, statically linked: use a release binary without the tag for GPUs)")

func dlopen(path string) (uintptr, error) { return 0, errNoCUDA }

func dlsym(handle uintptr, name string) (uintptr, error) { return 0, errNoCUDA }
