package cuda

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unsafe"
)

// nvrtcFuncs are the NVRTC entry points (nvrtc.h; no versioned names).
type nvrtcFuncs struct {
	nvrtcVersion, nvrtcGetNumSupportedArchs, nvrtcGetSupportedArchs  uintptr
	nvrtcCreateProgram, nvrtcCompileProgram, nvrtcDestroyProgram     uintptr
	nvrtcGetProgramLogSize, nvrtcGetProgramLog, nvrtcGetCUBINSize    uintptr
	nvrtcGetCUBIN, nvrtcGetPTXSize, nvrtcGetPTX, nvrtcGetErrorString uintptr
}

func (f *nvrtcFuncs) symbols() []symbol {
	return []symbol{
		sym(&f.nvrtcVersion, "nvrtcVersion"),
		sym(&f.nvrtcGetNumSupportedArchs, "nvrtcGetNumSupportedArchs"),
		sym(&f.nvrtcGetSupportedArchs, "nvrtcGetSupportedArchs"),
		sym(&f.nvrtcCreateProgram, "nvrtcCreateProgram"),
		sym(&f.nvrtcCompileProgram, "nvrtcCompileProgram"),
		sym(&f.nvrtcDestroyProgram, "nvrtcDestroyProgram"),
		sym(&f.nvrtcGetProgramLogSize, "nvrtcGetProgramLogSize"),
		sym(&f.nvrtcGetProgramLog, "nvrtcGetProgramLog"),
		sym(&f.nvrtcGetCUBINSize, "nvrtcGetCUBINSize"),
		sym(&f.nvrtcGetCUBIN, "nvrtcGetCUBIN"),
		sym(&f.nvrtcGetPTXSize, "nvrtcGetPTXSize"),
		sym(&f.nvrtcGetPTX, "nvrtcGetPTX"),
		sym(&f.nvrtcGetErrorString, "nvrtcGetErrorString"),
	}
}

func nvrtcError(op string, r int) *Error {
	e := &Error{Op: op, Code: r, API: "NVRTC"}
	if rtc.nvrtcGetErrorString != 0 {
		e.Name = goString(callPtr(rtc.nvrtcGetErrorString, uintptr(r)))
	}
	if e.Name == "" {
		e.Name = fmt.Sprintf("nvrtcResult %d", r)
	}
	return e
}

func checkRTC(op string, r int) error {
	if r == 0 {
		return nil
	}
	return nvrtcError(op, r)
}

// NVRTCVersion is the loaded NVRTC's version, e.g. 13, 0.
func NVRTCVersion() (major, minor int, err error) {
	l, err := Load()
	if err != nil {
		return 0, 0, err
	}
	return l.NVRTCMajor, l.NVRTCMinor, nil
}

// SupportedArchs lists the compute capabilities (major·10 + minor, ascending,
// e.g. 75 80 86 89 90 100 120) this NVRTC compiles for.
func SupportedArchs() ([]int, error) {
	if _, err := Load(); err != nil {
		return nil, err
	}
	var n int32
	if err := checkRTC("nvrtcGetNumSupportedArchs", call(rtc.nvrtcGetNumSupportedArchs, uintptr(unsafe.Pointer(&n)))); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, errors.New("gpu: NVRTC reports no supported architectures")
	}
	archs := make([]int32, n)
	if err := checkRTC("nvrtcGetSupportedArchs", call(rtc.nvrtcGetSupportedArchs, uintptr(unsafe.Pointer(&archs[0])))); err != nil {
		return nil, err
	}
	out := make([]int, n)
	for i, a := range archs {
		out[i] = int(a)
	}
	slices.Sort(out)
	return out, nil
}

// chooseArch picks the target for a device of compute capability
// major.minor: a cubin for sm_XY when NVRTC supports that exact arch, else
// PTX for the highest supported compute_XY not above the device (the driver
// JIT-compiles PTX forward to newer GPUs, never back to older ones).
func chooseArch(supported []int, major, minor int) (arch string, cubin bool, err error) {
	if major <= 0 || minor < 0 || minor > 9 {
		return "", false, fmt.Errorf("gpu: compute capability %d.%d is not valid", major, minor)
	}
	cc := major*10 + minor
	best := -1
	for _, a := range supported {
		if a == cc {
			return fmt.Sprintf("sm_%d", cc), true, nil
		}
		if a < cc && a > best {
			best = a
		}
	}
	if best < 0 {
		return "", false, fmt.Errorf("gpu: this NVRTC compiles for %s; none runs on a compute capability %d.%d device", archList(supported), major, minor)
	}
	return fmt.Sprintf("compute_%d", best), false, nil
}

func archList(a []int) string {
	if len(a) == 0 {
		return "no architecture"
	}
	s := make([]string, len(a))
	for i, x := range a {
		s[i] = fmt.Sprintf("sm_%d", x)
	}
	return strings.Join(s, " ")
}

// CompileError is a compilation NVRTC rejected. Error() reads
// "gpu: compile attention.cu for sm_90 (NVRTC 13.0): <log>".
type CompileError struct {
	Name         string // source name, "attention.cu"
	Arch         string // "sm_90" or "compute_90"
	Major, Minor int    // NVRTC version
	Log          string // NVRTC's program log
	Err          error  // the NVRTC status (*Error)
}

func (e *CompileError) Error() string {
	msg := strings.TrimSpace(e.Log)
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("gpu: compile %s for %s (NVRTC %d.%d): %s", e.Name, e.Arch, e.Major, e.Minor, msg)
}

func (e *CompileError) Unwrap() error { return e.Err }

// Compile compiles one CUDA C source (name is for messages and #line) for a
// device of compute capability major.minor. It returns a cubin for sm_XY
// when this NVRTC supports the device's arch, else NUL-terminated PTX for
// the highest supported compute_XY below it, and the arch string chosen.
// opts are extra NVRTC options ("-default-device", "--use_fast_math", "-DX=1", ...).
func Compile(src []byte, name string, major, minor int, opts ...string) (image []byte, arch string, err error) {
	supported, err := SupportedArchs()
	if err != nil {
		return nil, "", err
	}
	arch, cubin, err := chooseArch(supported, major, minor)
	if err != nil {
		return nil, "", err
	}
	image, err = compileArch(src, name, arch, cubin, opts)
	return image, arch, err
}

// compileArch compiles for one arch ("sm_90" → cubin, "compute_90" → PTX).
func compileArch(src []byte, name, arch string, cubin bool, opts []string) ([]byte, error) {
	l, err := Load()
	if err != nil {
		return nil, err
	}
	csrc := make([]byte, len(src)+1)
	copy(csrc, src)
	cname := cstr(name)
	var prog uintptr // nvrtcProgram
	if err := checkRTC("nvrtcCreateProgram("+name+")", call(rtc.nvrtcCreateProgram, uintptr(unsafe.Pointer(&prog)),
		uintptr(unsafe.Pointer(&csrc[0])), uintptr(unsafe.Pointer(&cname[0])), 0, 0, 0)); err != nil {
		return nil, err
	}
	defer func() { call(rtc.nvrtcDestroyProgram, uintptr(unsafe.Pointer(&prog))) }()

	all := append([]string{"--gpu-architecture=" + arch}, opts...)
	cOpts := make([][]byte, len(all))
	ptrs := make([]unsafe.Pointer, len(all)) // const char* const* options
	for i, o := range all {
		cOpts[i] = cstr(o)
		ptrs[i] = unsafe.Pointer(&cOpts[i][0])
	}
	r := call(rtc.nvrtcCompileProgram, prog, uintptr(len(ptrs)), uintptr(unsafe.Pointer(&ptrs[0])))
	log := programLog(prog)
	if r != 0 {
		return nil, &CompileError{Name: name, Arch: arch, Major: l.NVRTCMajor, Minor: l.NVRTCMinor, Log: log,
			Err: nvrtcError("nvrtcCompileProgram("+name+", "+arch+")", r)}
	}
	sizeFn, getFn, what := rtc.nvrtcGetPTXSize, rtc.nvrtcGetPTX, "PTX"
	if cubin {
		sizeFn, getFn, what = rtc.nvrtcGetCUBINSize, rtc.nvrtcGetCUBIN, "CUBIN"
	}
	var size uintptr // size_t
	if err := checkRTC("nvrtcGet"+what+"Size("+name+")", call(sizeFn, prog, uintptr(unsafe.Pointer(&size)))); err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, fmt.Errorf("gpu: compile %s for %s: NVRTC produced an empty %s", name, arch, what)
	}
	out := make([]byte, size) // PTX's size counts its terminating NUL, which cuModuleLoadData needs
	if err := checkRTC("nvrtcGet"+what+"("+name+")", call(getFn, prog, uintptr(unsafe.Pointer(&out[0])))); err != nil {
		return nil, err
	}
	return out, nil
}

// programLog is NVRTC's log for prog (warnings, or errors after a failure).
func programLog(prog uintptr) string {
	var size uintptr
	if call(rtc.nvrtcGetProgramLogSize, prog, uintptr(unsafe.Pointer(&size))) != 0 || size <= 1 {
		return ""
	}
	buf := make([]byte, size)
	if call(rtc.nvrtcGetProgramLog, prog, uintptr(unsafe.Pointer(&buf[0]))) != 0 {
		return ""
	}
	return strings.TrimRight(string(buf), "\x00")
}
