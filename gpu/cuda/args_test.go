package cuda

import (
	"encoding/binary"
	"math"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

func TestPackArgsLayout(t *testing.T) {
	args := []any{DevicePtr(0x7f001000), int32(-5), float32(1.5), int64(-7), uint32(9), float64(2.25), uintptr(3), int32(4), int32(5), uint64(1 << 40)}
	p, err := packArgs(args)
	if err != nil {
		t.Fatal(err)
	}
	wantOff := []int{0, 8, 12, 16, 24, 32, 40, 48, 52, 56}
	wantSize := []int{8, 4, 4, 8, 4, 8, 8, 4, 4, 8}
	if !reflect.DeepEqual(p.offsets, wantOff) || !reflect.DeepEqual(p.sizes, wantSize) {
		t.Fatalf("offsets %v sizes %v, want %v %v", p.offsets, p.sizes, wantOff, wantSize)
	}
	if len(p.words) != 8 {
		t.Fatalf("%d words, want 8", len(p.words))
	}
	b := p.bytes()
	ne := binary.NativeEndian
	if ne.Uint64(b[0:]) != 0x7f001000 || int32(ne.Uint32(b[8:])) != -5 || math.Float32frombits(ne.Uint32(b[12:])) != 1.5 ||
		int64(ne.Uint64(b[16:])) != -7 || ne.Uint32(b[24:]) != 9 || math.Float64frombits(ne.Uint64(b[32:])) != 2.25 ||
		ne.Uint64(b[40:]) != 3 || ne.Uint32(b[48:]) != 4 || ne.Uint32(b[52:]) != 5 || ne.Uint64(b[56:]) != 1<<40 {
		t.Errorf("values read back wrong: % x", b)
	}
	ptrs := p.pointers()
	base := uintptr(unsafe.Pointer(&b[0]))
	if base%8 != 0 {
		t.Errorf("buffer at %#x is not 8-byte aligned", base)
	}
	for i, q := range ptrs {
		if uintptr(q)-base != uintptr(wantOff[i]) {
			t.Errorf("pointer %d at offset %d, want %d", i, uintptr(q)-base, wantOff[i])
		}
		if uintptr(q)%uintptr(wantSize[i]) != 0 {
			t.Errorf("argument %d misaligned", i)
		}
	}
}

func TestPackArgsAlignmentPadding(t *testing.T) {
	p, err := packArgs([]any{int32(1), int64(2), float32(3)})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p.offsets, []int{0, 8, 16}) || len(p.words) != 3 {
		t.Errorf("offsets %v, %d words", p.offsets, len(p.words))
	}
	p, err = packArgs(nil)
	if err != nil || len(p.words) != 0 || len(p.pointers()) != 0 {
		t.Errorf("no arguments: %+v %v", p, err)
	}
}

func TestPackArgsRejects(t *testing.T) {
	x := float32(1)
	for _, bad := range []any{1, int16(1), uint8(1), true, nil, &x, "s", []float32{1}, unsafe.Pointer(&x)} {
		_, err := packArgs([]any{int32(0), bad})
		if err == nil {
			t.Errorf("%T accepted", bad)
			continue
		}
		if !strings.Contains(err.Error(), "argument 1") {
			t.Errorf("error does not name the argument: %v", err)
		}
	}
}
