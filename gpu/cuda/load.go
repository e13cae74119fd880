package cuda

import (
	"fmt"
	"os"
	"sync"
	"unsafe"
)

// Libs describes the libraries Load bound.
type Libs struct {
	Driver, BLAS, NVRTC    string // paths (or sonames, when found by the dynamic linker) actually loaded
	DriverVersion          int    // cuDriverGetVersion, e.g. 13000 for CUDA 13.0
	NVRTCMajor, NVRTCMinor int    // nvrtcVersion
	BLASVersion            int    // major·10000 + minor·100 + patch (CUBLAS_VERSION's encoding), e.g. 130100
}

// The bound entry points. They are written once, inside loadOnce, before
// any caller can see a nil error from Load, and only read afterwards.
var (
	loadOnce sync.Once
	loaded   *Libs
	loadErr  error

	cu  driverFuncs
	bl  blasFuncs
	rtc nvrtcFuncs
)

// Load finds and binds libcuda.so.1, libcublas.so.{13,12} (preloading
// libcublasLt from the same folder) and libnvrtc.so.{13,12} (preloading
// libnvrtc-builtins from the same folder), in the order the package
// documentation describes.
// cuBLAS and NVRTC versions newer than the driver are skipped. It runs once
// per process; later calls return the first result. Nothing is loaded at
// import.
func Load() (*Libs, error) {
	loadOnce.Do(func() {
		dirs := searchDirs(os.Getenv, pythonSitePackages())
		var f funcs
		loaded, f, loadErr = load(dirs, os.Getenv(EnvPath), true, dlopen)
		if loadErr == nil {
			cu, bl, rtc = f.cu, f.bl, f.rtc
		}
	})
	if loadErr != nil {
		return nil, loadErr
	}
	l := *loaded
	return &l, nil
}

type funcs struct {
	cu  driverFuncs
	bl  blasFuncs
	rtc nvrtcFuncs
}

// load is Load without the once: it searches dirs (then the dynamic linker
// when linker is set), binds every entry point and reads the versions.
func load(dirs []string, env string, linker bool, open opener) (*Libs, funcs, error) {
	var f funcs
	libs := &Libs{}

	drv, err := findLibrary(driverSpec(), dirs, env, linker, open)
	if err != nil {
		return nil, f, err
	}
	libs.Driver = drv.path
	if err := bind(drv, f.cu.symbols()); err != nil {
		return nil, f, err
	}
	var v int32
	if r := call(f.cu.cuDriverGetVersion, uintptr(unsafe.Pointer(&v))); r != 0 {
		return nil, f, fmt.Errorf("gpu: cuDriverGetVersion in %s failed with CUresult %d", drv.path, r)
	}
	libs.DriverVersion = int(v)
	majors := toolkitMajors(libs.DriverVersion)
	if len(majors) == 0 {
		return nil, f, fmt.Errorf("gpu: the NVIDIA driver (%s) supports CUDA %d.%d; this program needs CUDA 12 or newer: update the driver",
			drv.path, v/1000, v%1000/10)
	}

	b, err := findLibrary(blasSpec(majors), dirs, env, linker, open)
	if err != nil {
		return nil, f, err
	}
	libs.BLAS = b.path
	if err := bind(b, f.bl.symbols()); err != nil {
		return nil, f, err
	}
	var parts [3]int32 // libraryPropertyType: MAJOR_VERSION 0, MINOR_VERSION 1, PATCH_LEVEL 2
	for i := range parts {
		if r := call(f.bl.cublasGetProperty, uintptr(i), uintptr(unsafe.Pointer(&parts[i]))); r != 0 {
			return nil, f, fmt.Errorf("gpu: cublasGetProperty(%d) in %s failed with status %d", i, b.path, r)
		}
	}
	libs.BLASVersion = int(parts[0])*10000 + int(parts[1])*100 + int(parts[2])

	n, err := findLibrary(nvrtcSpec(majors), dirs, env, linker, open)
	if err != nil {
		return nil, f, err
	}
	libs.NVRTC = n.path
	if err := bind(n, f.rtc.symbols()); err != nil {
		return nil, f, err
	}
	var maj, mnr int32
	if r := call(f.rtc.nvrtcVersion, uintptr(unsafe.Pointer(&maj)), uintptr(unsafe.Pointer(&mnr))); r != 0 {
		return nil, f, fmt.Errorf("gpu: nvrtcVersion in %s failed with status %d", n.path, r)
	}
	libs.NVRTCMajor, libs.NVRTCMinor = int(maj), int(mnr)
	return libs, f, nil
}

// symbol is one entry point to bind: the first of names the library exports.
type symbol struct {
	dst   *uintptr
	names []string
}

func sym(dst *uintptr, names ...string) symbol { return symbol{dst, names} }

func bind(lib found, syms []symbol) error {
	for _, s := range syms {
		var lastErr error
		for _, name := range s.names {
			p, err := dlsym(lib.handle, name)
			if err == nil && p != 0 {
				*s.dst = p
				break
			}
			lastErr = err
		}
		if *s.dst == 0 {
			return fmt.Errorf("gpu: %s does not export %s (too old?): %v", lib.path, s.names[0], lastErr)
		}
	}
	return nil
}
