package quant

// The code layout is documented in the package comment (quant.go).

// chunk is how many codes the quantize/dequantize loops stage at a time in a
// stack buffer. It is a multiple of 8, so every chunk starts on a byte boundary
// for every width and can be packed or unpacked independently.
const chunk = 512

// packedLen is the byte length of n codes of the given width: ⌈n·bits/8⌉.
// Written as n/8·bits + … so that it cannot overflow for any n the callers allow.
func packedLen(n, bits int) int {
	return n/8*bits + ((n%8)*bits+7)/8
}

// pack stores codes (each < 1<<bits) into dst, which has packedLen(len(codes),
// bits) bytes. dst need not be zeroed: every byte is fully written.
func pack(dst []byte, codes []uint8, bits int) {
	n := len(codes)
	switch bits {
	case 8:
		copy(dst, codes)
	case 4:
		i := 0
		for ; i+1 < n; i += 2 {
			dst[i>>1] = codes[i] | codes[i+1]<<4
		}
		if i < n {
			dst[i>>1] = codes[i]
		}
	case 2:
		i := 0
		for ; i+3 < n; i += 4 {
			dst[i>>2] = codes[i] | codes[i+1]<<2 | codes[i+2]<<4 | codes[i+3]<<6
		}
		if i < n {
			var b byte
			for t := 0; i+t < n; t++ {
				b |= codes[i+t] << (2 * t)
			}
			dst[i>>2] = b
		}
	default:
		// Generic bitstream writer (used for 3 bits): accumulate into a word and
		// flush whole bytes.
		var acc uint32
		nacc := 0
		o := 0
		for _, c := range codes {
			acc |= uint32(c) << nacc
			nacc += bits
			for nacc >= 8 {
				dst[o] = byte(acc)
				o++
				acc >>= 8
				nacc -= 8
			}
		}
		if nacc > 0 {
			dst[o] = byte(acc)
		}
	}
}

// unpack is the inverse of pack: it fills dst (n codes) from src, which holds at
// least packedLen(len(dst), bits) bytes. Padding bits are ignored here.
func unpack(dst []uint8, src []byte, bits int) {
	n := len(dst)
	switch bits {
	case 8:
		copy(dst, src[:n])
	case 4:
		i := 0
		for ; i+1 < n; i += 2 {
			b := src[i>>1]
			dst[i] = b & 0xF
			dst[i+1] = b >> 4
		}
		if i < n {
			dst[i] = src[i>>1] & 0xF
		}
	case 2:
		i := 0
		for ; i+3 < n; i += 4 {
			b := src[i>>2]
			dst[i] = b & 3
			dst[i+1] = b >> 2 & 3
			dst[i+2] = b >> 4 & 3
			dst[i+3] = b >> 6
		}
		for t := 0; i+t < n; t++ {
			dst[i+t] = src[i>>2] >> (2 * t) & 3
		}
	default:
		var acc uint32
		nacc := 0
		o := 0
		mask := uint32(1)<<bits - 1
		for i := range dst {
			for nacc < bits {
				acc |= uint32(src[o]) << nacc
				o++
				nacc += 8
			}
			dst[i] = uint8(acc & mask)
			acc >>= bits
			nacc -= bits
		}
	}
}
