// Package gguf reads, strictly, the GGUF files of llama.cpp and ggml, and
// writes them (for tests and small tools).
//
// # Format
//
// A GGUF file is, all little-endian:
//
//	"GGUF"  version:u32  tensor_count  kv_count
//	kv_count × (key:string  type:u32  value)
//	tensor_count × (name:string  n_dims:u32  n_dims × dim  type:u32  offset:u64)
//	zero padding to a multiple of the alignment
//	data section: each tensor at its offset, a multiple of the alignment
//
// Counts, string lengths and array lengths are u32 in version 1 and u64 in
// versions 2 and 3, as are the dimensions. A string is its length and its
// bytes; an array is its element type (u32), its length and its elements,
// which may themselves be arrays. The alignment is the UINT32 metadata
// value general.alignment, 32 when absent. Dimensions are in ggml order,
// fastest-varying first: a PyTorch tensor of shape [rows, cols] has dims
// [cols, rows] (TensorInfo.Shape reverses them back). Version 3 only added
// the possibility of big-endian files, which carry no flag; we detect them
// by their byte-swapped version field and refuse them.
//
// # Strictness
//
// Parse and Open validate the whole header before returning, and never
// panic or allocate in proportion to a count the file merely claims: every
// count is checked against the bytes left first. They refuse truncation
// anywhere, unknown value or tensor types, BOOL values other than 0 and 1,
// empty or non-UTF-8 keys and tensor names, keys longer than the 65535
// bytes the specification allows, duplicate keys or tensor names, more
// than 4 dimensions (ggml's limit), a first dimension that does not hold
// whole quantization blocks, sizes that overflow, a general.alignment that
// is not a UINT32 power of two, tensor data that is misaligned, outside
// the file, or overlapping another tensor's, and arrays nested more than 8
// deep. Errors name the file (when opened by path), the key or tensor, and
// the byte offset where that helps.
//
// On purpose, we are not stricter than llama.cpp where real files differ
// from the letter of the specification: string values (token texts
// especially) are kept byte for byte without a UTF-8 check, keys need not
// be lower_snake_case ASCII, tensors may come in any order with gaps
// between them, and the padding bytes are not checked to be zero.
//
// # Tensor types
//
// Every ggml type is known by name and block size, so any file lays out
// and validates, but File.Float32 decodes only F32, F16, BF16 and Q8_0;
// other types (Q4_0, Q4_K, …) give an error naming the type and tensor,
// and their bytes remain available from File.Bytes.
package gguf
