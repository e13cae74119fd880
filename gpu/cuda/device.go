package cuda

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// Device describes one GPU.
type Device struct {
	Ordinal        int
	Name           string // "NVIDIA H100 80GB HBM3"
	Major, Minor   int    // compute capability: 9, 0 for sm_90
	TotalMem       int64  // bytes
	SMs            int    // streaming multiprocessors
	MaxSharedOptin int    // bytes of shared memory a block may opt in to (SetMaxDynamicShared)
}

// String reads "device 0 (NVIDIA H100 80GB HBM3, sm_90, 79.1 GiB)".
func (d Device) String() string {
	return fmt.Sprintf("device %d (%s, sm_%d%d, %s)", d.Ordinal, d.Name, d.Major, d.Minor, FormatBytes(d.TotalMem))
}

// where is how error messages name the device: "device 0 (NVIDIA H100 80GB HBM3)".
func (d Device) where() string {
	return fmt.Sprintf("device %d (%s)", d.Ordinal, d.Name)
}

// ParseDevice accepts "cuda", "cuda:N", "gpu", "gpu:N" (any case, N ≥ 0;
// no N means 0) and returns the ordinal; anything else is an error.
func ParseDevice(s string) (ordinal int, err error) {
	t := strings.ToLower(strings.TrimSpace(s))
	name, num, hasNum := strings.Cut(t, ":")
	if name != "cuda" && name != "gpu" {
		return 0, fmt.Errorf("gpu: device %q: want cuda, cuda:N, gpu or gpu:N", s)
	}
	if !hasNum {
		return 0, nil
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 || num == "" || num[0] == '+' {
		return 0, fmt.Errorf("gpu: device %q: the ordinal after ':' must be a number ≥ 0", s)
	}
	return n, nil
}

var (
	initOnce sync.Once
	initErr  error
)

// initDriver loads the libraries and calls cuInit once per process.
func initDriver() error {
	if _, err := Load(); err != nil {
		return err
	}
	initOnce.Do(func() {
		if r := call(cu.cuInit, 0); r != 0 {
			e := cuError("cuInit", r)
			if r == cudaErrorNoDevice {
				e.Detail = "the driver loaded but sees no GPU; check nvidia-smi and CUDA_VISIBLE_DEVICES"
			}
			initErr = e
		}
	})
	return initErr
}

// DeviceCount is the number of CUDA devices visible to this process.
func DeviceCount() (int, error) {
	if err := initDriver(); err != nil {
		return 0, err
	}
	var n int32
	if err := checkCU("cuDeviceGetCount", call(cu.cuDeviceGetCount, uintptr(unsafe.Pointer(&n)))); err != nil {
		return 0, err
	}
	return int(n), nil
}

// queryDevice reads a device's description; the driver must be initialized.
func queryDevice(ordinal int) (Device, int32, error) {
	d := Device{Ordinal: ordinal}
	var dev int32
	if err := checkCU(fmt.Sprintf("cuDeviceGet(%d)", ordinal), call(cu.cuDeviceGet, uintptr(unsafe.Pointer(&dev)), uintptr(ordinal))); err != nil {
		return d, 0, err
	}
	name := make([]byte, 256)
	if err := checkCU("cuDeviceGetName", call(cu.cuDeviceGetName, uintptr(unsafe.Pointer(&name[0])), uintptr(len(name)), uintptr(dev))); err != nil {
		return d, 0, err
	}
	if i := strings.IndexByte(string(name), 0); i >= 0 {
		name = name[:i]
	}
	d.Name = string(name)
	attr := func(a int) (int, error) {
		var v int32
		err := checkCU(fmt.Sprintf("cuDeviceGetAttribute(%d) on device %d", a, ordinal),
			call(cu.cuDeviceGetAttribute, uintptr(unsafe.Pointer(&v)), uintptr(a), uintptr(dev)))
		return int(v), err
	}
	var err error
	if d.Major, err = attr(attrComputeCapMajor); err != nil {
		return d, 0, err
	}
	if d.Minor, err = attr(attrComputeCapMinor); err != nil {
		return d, 0, err
	}
	if d.SMs, err = attr(attrMultiprocessorCount); err != nil {
		return d, 0, err
	}
	if d.MaxSharedOptin, err = attr(attrMaxSharedPerBlockOptin); err != nil {
		return d, 0, err
	}
	var total uintptr // size_t
	if err := checkCU("cuDeviceTotalMem", call(cu.cuDeviceTotalMem, uintptr(unsafe.Pointer(&total)), uintptr(dev))); err != nil {
		return d, 0, err
	}
	d.TotalMem = int64(total)
	return d, dev, nil
}
