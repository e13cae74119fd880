// Package mmap maps weight files read-only, so large models are paged in on
// demand and shared between processes instead of copied into the heap. The
// GGUF and safetensors readers use it; views into a mapping are invalid after
// Unmap, and a file truncated while mapped faults on access (documented by
// both readers).
package mmap
