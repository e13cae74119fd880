//go:build windows && !nocuda

package cuda

import "errors"

var errWindows = errors.New("not supported on Windows by this package (it binds the Linux CUDA libraries)")

func dlopen(path string) (uintptr, error) { return 0, errWindows }

func dlsym(handle uintptr, name string) (uintptr, error) { return 0, errWindows }
