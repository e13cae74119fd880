package gguf

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Value is one metadata value: a scalar, a string, or an array of one
// element type (arrays of arrays included). The zero Value is a UINT8 0.
//
// Scalars keep their exact bits, so a value read and written again is
// byte-identical (NaN payloads included).
type Value struct {
	typ  ValueType
	elem ValueType // element type, for arrays
	// bits holds numbers and bools: unsigned values zero-extended, signed
	// ones sign-extended, floats as their IEEE bits (float32 bits for
	// FLOAT32), bools as 0 or 1.
	bits uint64
	str  string
	// arr holds an array's elements as a typed slice: []uint8, []int8,
	// []uint16, []int16, []uint32, []int32, []float32, []bool, []string,
	// []Value (for arrays of arrays), []uint64, []int64 or []float64.
	arr any
}

// KV is one metadata key and value, for Write. Value is either a Value or
// any Go value that ValueOf accepts.
type KV struct {
	Key   string
	Value any
}

// ValueOf converts a Go value to a metadata Value. It accepts a Value
// (returned as is), the fixed-size types uint8, int8, uint16, int16,
// uint32, int32, uint64, int64, float32, float64, bool, and string, slices
// of any of those (an array of that type), and []Value for an array of
// arrays, whose elements must all be arrays. Plain int and uint are
// refused because GGUF needs an explicit width.
func ValueOf(x any) (Value, error) {
	switch x := x.(type) {
	case Value:
		return x, nil
	case uint8:
		return Value{typ: TypeUint8, bits: uint64(x)}, nil
	case int8:
		return Value{typ: TypeInt8, bits: uint64(int64(x))}, nil
	case uint16:
		return Value{typ: TypeUint16, bits: uint64(x)}, nil
	case int16:
		return Value{typ: TypeInt16, bits: uint64(int64(x))}, nil
	case uint32:
		return Value{typ: TypeUint32, bits: uint64(x)}, nil
	case int32:
		return Value{typ: TypeInt32, bits: uint64(int64(x))}, nil
	case uint64:
		return Value{typ: TypeUint64, bits: x}, nil
	case int64:
		return Value{typ: TypeInt64, bits: uint64(x)}, nil
	case float32:
		return Value{typ: TypeFloat32, bits: uint64(math.Float32bits(x))}, nil
	case float64:
		return Value{typ: TypeFloat64, bits: math.Float64bits(x)}, nil
	case bool:
		var b uint64
		if x {
			b = 1
		}
		return Value{typ: TypeBool, bits: b}, nil
	case string:
		return Value{typ: TypeString, str: x}, nil
	case []uint8:
		return arrayOf(TypeUint8, x), nil
	case []int8:
		return arrayOf(TypeInt8, x), nil
	case []uint16:
		return arrayOf(TypeUint16, x), nil
	case []int16:
		return arrayOf(TypeInt16, x), nil
	case []uint32:
		return arrayOf(TypeUint32, x), nil
	case []int32:
		return arrayOf(TypeInt32, x), nil
	case []uint64:
		return arrayOf(TypeUint64, x), nil
	case []int64:
		return arrayOf(TypeInt64, x), nil
	case []float32:
		return arrayOf(TypeFloat32, x), nil
	case []float64:
		return arrayOf(TypeFloat64, x), nil
	case []bool:
		return arrayOf(TypeBool, x), nil
	case []string:
		return arrayOf(TypeString, x), nil
	case []Value:
		for i, v := range x {
			if v.typ != TypeArray {
				return Value{}, fmt.Errorf("array of arrays: element %d is %s, not ARRAY", i, v.typ)
			}
		}
		return arrayOf(TypeArray, x), nil
	case int, uint:
		return Value{}, fmt.Errorf("unsupported Go type %T: use a sized integer type such as uint32", x)
	}
	return Value{}, fmt.Errorf("unsupported Go type %T", x)
}

// arrayOf copies s so that later changes by the caller do not reach the
// Value.
func arrayOf[T any](elem ValueType, s []T) Value {
	c := slices.Clone(s)
	if c == nil {
		c = []T{}
	}
	return Value{typ: TypeArray, elem: elem, arr: c}
}

// Type is the value's type.
func (v Value) Type() ValueType { return v.typ }

// ElemType is an array's element type; it is meaningless for other values.
func (v Value) ElemType() ValueType { return v.elem }

// Len is an array's number of elements, 0 for other values.
func (v Value) Len() int {
	switch a := v.arr.(type) {
	case []uint8:
		return len(a)
	case []int8:
		return len(a)
	case []uint16:
		return len(a)
	case []int16:
		return len(a)
	case []uint32:
		return len(a)
	case []int32:
		return len(a)
	case []uint64:
		return len(a)
	case []int64:
		return len(a)
	case []float32:
		return len(a)
	case []float64:
		return len(a)
	case []bool:
		return len(a)
	case []string:
		return len(a)
	case []Value:
		return len(a)
	}
	return 0
}

// Any returns the value as the Go type ValueOf would accept for it: uint8,
// int8, …, float64, bool or string for a scalar, and a fresh copy of the
// typed slice ([]Value for an array of arrays) for an array.
func (v Value) Any() any {
	switch v.typ {
	case TypeUint8:
		return uint8(v.bits)
	case TypeInt8:
		return int8(v.bits)
	case TypeUint16:
		return uint16(v.bits)
	case TypeInt16:
		return int16(v.bits)
	case TypeUint32:
		return uint32(v.bits)
	case TypeInt32:
		return int32(v.bits)
	case TypeUint64:
		return v.bits
	case TypeInt64:
		return int64(v.bits)
	case TypeFloat32:
		return math.Float32frombits(uint32(v.bits))
	case TypeFloat64:
		return math.Float64frombits(v.bits)
	case TypeBool:
		return v.bits != 0
	case TypeString:
		return v.str
	case TypeArray:
		return cloneAny(v.arr)
	}
	return nil
}

func cloneAny(a any) any {
	switch a := a.(type) {
	case []uint8:
		return slices.Clone(a)
	case []int8:
		return slices.Clone(a)
	case []uint16:
		return slices.Clone(a)
	case []int16:
		return slices.Clone(a)
	case []uint32:
		return slices.Clone(a)
	case []int32:
		return slices.Clone(a)
	case []uint64:
		return slices.Clone(a)
	case []int64:
		return slices.Clone(a)
	case []float32:
		return slices.Clone(a)
	case []float64:
		return slices.Clone(a)
	case []bool:
		return slices.Clone(a)
	case []string:
		return slices.Clone(a)
	case []Value:
		return slices.Clone(a)
	}
	return nil
}

// uint returns an integer scalar as a uint64 if it is non-negative.
func (v Value) uint() (uint64, bool) {
	switch {
	case v.typ.isUnsigned():
		return v.bits, true
	case v.typ.isSigned():
		return v.bits, int64(v.bits) >= 0
	}
	return 0, false
}

// int returns an integer scalar as an int64 if it fits.
func (v Value) int() (int64, bool) {
	switch {
	case v.typ.isSigned():
		return int64(v.bits), true
	case v.typ.isUnsigned():
		return int64(v.bits), v.bits <= math.MaxInt64
	}
	return 0, false
}

// float returns a FLOAT32 or FLOAT64 scalar as a float64.
func (v Value) float() (float64, bool) {
	switch v.typ {
	case TypeFloat32:
		return float64(math.Float32frombits(uint32(v.bits))), true
	case TypeFloat64:
		return math.Float64frombits(v.bits), true
	}
	return 0, false
}

// String formats the value for people: numbers and quoted strings as Go
// prints them, arrays as their type, length and first few elements.
func (v Value) String() string {
	if v.typ != TypeArray {
		if v.typ == TypeString {
			return strconv.Quote(v.str)
		}
		return fmt.Sprint(v.Any())
	}
	const show = 8
	var b strings.Builder
	fmt.Fprintf(&b, "[%d]%s{", v.Len(), v.elem)
	n := min(v.Len(), show)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(v.index(i).String())
	}
	if v.Len() > show {
		b.WriteString(", …")
	}
	b.WriteString("}")
	return b.String()
}

// index returns element i of an array as a Value.
func (v Value) index(i int) Value {
	var x any
	switch a := v.arr.(type) {
	case []uint8:
		x = a[i]
	case []int8:
		x = a[i]
	case []uint16:
		x = a[i]
	case []int16:
		x = a[i]
	case []uint32:
		x = a[i]
	case []int32:
		x = a[i]
	case []uint64:
		x = a[i]
	case []int64:
		x = a[i]
	case []float32:
		x = a[i]
	case []float64:
		x = a[i]
	case []bool:
		x = a[i]
	case []string:
		x = a[i]
	case []Value:
		return a[i]
	}
	e, _ := ValueOf(x)
	return e
}
