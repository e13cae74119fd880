// Package safetensors reads and writes the Hugging Face safetensors format:
// an 8-byte little-endian header length N, N bytes of a UTF-8 JSON header
// (padded with spaces), then one byte buffer that the tensors tile exactly.
//
// kronfed uses it for its own adapter files (which PEFT must also be able to
// load) and for reading Hugging Face model folders, either a single
// model.safetensors or shards listed by model.safetensors.index.json
// (see OpenIndex and OpenModel).
//
// # Why our own implementation
//
// We looked at github.com/nlpodyssey/safetensors (the only Go library on the
// module proxy, v0.0.0-20250209183917-bfb01cc25f7c) and decided against it:
//   - Reading needs the whole file as one []byte; there is no file API, no
//     mmap and no ReadAt path, and there is no support for sharded folders.
//   - Validation is weaker than we need: duplicate tensor names are silently
//     collapsed (the header is decoded into a Go map), text after the JSON
//     object is ignored, and invalid UTF-8 is silently replaced.
//   - DType.Size panics on an unknown value, and NewTensorView counts a
//     scalar (shape []) as zero elements.
//   - There are no float16/bfloat16 conversions, and errors name neither the
//     file nor, reliably, the tensor.
//
// The format is small enough that a strict, fuzzed implementation of our own
// costs less than working around those points.
//
// # Compatibility
//
// The reader accepts a subset of what the reference Rust implementation
// (used by the Python package, and so by transformers and PEFT) accepts, so
// anything this package reads, the reference reads too. It is stricter on
// duplicate JSON keys (anywhere in the header), unknown keys in a tensor
// entry, and a few number spellings such as -0.
//
// The writer lays tensors out like the reference: by descending dtype (in the
// reference's dtype order, which groups by element size, largest first), then
// by name. That keeps every tensor aligned to its element size, given the
// 8-byte aligned start of the buffer that the header padding ensures. The
// header lists "__metadata__" first (its keys sorted), then the tensors in
// layout order, in compact JSON escaped as the reference escapes it. So for
// the same tensors and at most one metadata entry the output is byte-identical
// to the reference's (the reference orders several metadata keys by hash, so
// there it is random and ours is sorted).
//
// # Memory
//
// Open maps the file read-only on unix systems, so opening a multi-gigabyte
// model costs only the header parse, and File.Bytes returns views into the
// mapping without copying. Elsewhere, or if mapping fails, it falls back to
// os.File.ReadAt and Bytes returns a fresh copy. Mapped views must not be
// written to, and are invalid after Close; as with any mapping, truncating
// the file while it is mapped makes reads fault.
package safetensors
