package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// File names that transformers uses in a model folder.
const (
	IndexFileName  = "model.safetensors.index.json"
	SingleFileName = "model.safetensors"
)

// Index is a sharded model: the shards listed by an index file such as
// model.safetensors.index.json, opened together and looked up as one.
//
// The index is {"metadata": {...}, "weight_map": {"tensor": "shard file"}}.
// OpenIndex opens every shard up front (cheap: shards are mapped, only their
// headers are read) so that the index and the shards are checked against
// each other once, at open time: a weight_map entry whose shard lacks the
// tensor is an error, and so is a tensor present in a shard but not mapped
// to that shard. The latter is strict on purpose: transformers would load
// such a tensor anyway, so ignoring it here would make our view of the model
// differ from theirs without a word.
//
// TensorInfo offsets returned by an Index are relative to the data buffer
// of the shard holding the tensor. Methods may be called concurrently,
// except Close.
type Index struct {
	path    string         // the index file, for errors
	meta    map[string]any // the index's "metadata" object
	shards  []string       // shard file names, sorted
	files   []*File        // parallel to shards
	where   map[string]*File
	tensors []TensorInfo // sorted by name
}

var _ Reader = (*Index)(nil)

// maxIndexSize bounds the index file we read into memory. Real indexes are
// well under a megabyte; this only stops a wrong path from reading a huge
// file.
const maxIndexSize = MaxHeaderSize

// OpenIndex opens a sharded model. path is either the index file or a
// directory holding IndexFileName; shard names in the index are resolved
// against the index's directory and must be plain file names there.
func OpenIndex(path string) (*Index, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	if st.IsDir() {
		path = filepath.Join(path, IndexFileName)
		if st, err = os.Stat(path); err != nil {
			return nil, fmt.Errorf("safetensors: %w", err)
		}
	}
	if st.Size() > maxIndexSize {
		return nil, fileErr(path, fmt.Errorf("index file of %d bytes exceeds the %d-byte limit", st.Size(), maxIndexSize))
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	meta, weightMap, err := parseIndex(raw)
	if err != nil {
		return nil, fileErr(path, err)
	}

	x := &Index{path: path, meta: meta, where: make(map[string]*File, len(weightMap))}
	byShard := map[string]*File{}
	for _, tensor := range slices.Sorted(maps.Keys(weightMap)) {
		shard := weightMap[tensor]
		if shard == "" || shard == "." || shard == ".." || strings.ContainsAny(shard, `/\`) || filepath.Base(shard) != shard {
			return nil, fileErr(path, fmt.Errorf("tensor %q: shard %q is not a plain file name in the index's directory", tensor, shard))
		}
		byShard[shard] = nil
	}
	x.shards = slices.Sorted(maps.Keys(byShard))
	dir := filepath.Dir(path)
	for _, shard := range x.shards {
		f, err := Open(filepath.Join(dir, shard))
		if err != nil {
			x.Close()
			// err already names the shard's path.
			return nil, fmt.Errorf("%w (a shard listed by %s)", err, path)
		}
		byShard[shard] = f
		x.files = append(x.files, f)
	}

	// The map and the shards must agree both ways.
	for _, tensor := range slices.Sorted(maps.Keys(weightMap)) {
		shard := weightMap[tensor]
		t, ok := byShard[shard].Tensor(tensor)
		if !ok {
			x.Close()
			return nil, fileErr(path, fmt.Errorf("tensor %q: weight_map puts it in %s, which has no such tensor", tensor, shard))
		}
		x.where[tensor] = byShard[shard]
		x.tensors = append(x.tensors, t)
	}
	for i, f := range x.files {
		for _, t := range f.h.tensors {
			if mapped, ok := weightMap[t.Name]; !ok {
				x.Close()
				return nil, fileErr(path, fmt.Errorf("tensor %q: present in shard %s but missing from weight_map", t.Name, x.shards[i]))
			} else if mapped != x.shards[i] {
				x.Close()
				return nil, fileErr(path, fmt.Errorf("tensor %q: present in shard %s, but weight_map puts it in %s", t.Name, x.shards[i], mapped))
			}
		}
	}
	return x, nil
}

// parseIndex reads the index JSON: "weight_map" (required, strings only,
// no duplicate keys, since a duplicate would leave a tensor's shard
// ambiguous) and "metadata" (optional object, kept as decoded). Other
// top-level keys are ignored.
func parseIndex(raw []byte) (map[string]any, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	r := jsonReader{dec}
	if err := r.delim('{', "index"); err != nil {
		return nil, nil, err
	}
	var meta map[string]any
	var weightMap map[string]string
	seen := map[string]bool{}
	for dec.More() {
		k, err := r.key()
		if err != nil {
			return nil, nil, err
		}
		if seen[k] {
			return nil, nil, fmt.Errorf("key %q appears twice", k)
		}
		seen[k] = true
		switch k {
		case "weight_map":
			var null bool
			weightMap, null, err = r.stringMap(`"weight_map"`)
			if err != nil {
				return nil, nil, err
			}
			if null {
				return nil, nil, errors.New(`"weight_map" must be an object of strings, found null`)
			}
		case "metadata":
			var v any
			if err := dec.Decode(&v); err != nil {
				return nil, nil, fmt.Errorf("invalid JSON: %w", err)
			}
			if v != nil {
				m, ok := v.(map[string]any)
				if !ok {
					kind := "a scalar"
					if _, isArray := v.([]any); isArray {
						kind = "an array"
					}
					return nil, nil, fmt.Errorf(`"metadata" must be an object, found %s`, kind)
				}
				meta = m
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, nil, fmt.Errorf("invalid JSON: %w", err)
			}
		}
	}
	if err := r.delim('}', "index"); err != nil {
		return nil, nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("unexpected data after the JSON object")
	}
	if !seen["weight_map"] {
		return nil, nil, errors.New(`missing "weight_map"`)
	}
	return meta, weightMap, nil
}

// Metadata returns a shallow copy of the index's "metadata" object, such as
// {"total_size": json.Number("...")}; numbers are json.Number so that
// large sizes stay exact.
func (x *Index) Metadata() map[string]any {
	m := maps.Clone(x.meta)
	if m == nil {
		m = map[string]any{}
	}
	return m
}

// Shards lists the shard file names, sorted.
func (x *Index) Shards() []string { return slices.Clone(x.shards) }

// Tensors lists every tensor of every shard, sorted by name.
func (x *Index) Tensors() []TensorInfo {
	out := make([]TensorInfo, len(x.tensors))
	for i, t := range x.tensors {
		out[i] = t.clone()
	}
	return out
}

// Tensor describes the named tensor, if present.
func (x *Index) Tensor(name string) (TensorInfo, bool) {
	f, ok := x.where[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensor(name)
}

// Bytes returns the named tensor's raw bytes, as File.Bytes does.
func (x *Index) Bytes(name string) ([]byte, error) {
	f, ok := x.where[name]
	if !ok {
		return nil, fileErr(x.path, fmt.Errorf("no tensor %q", name))
	}
	return f.Bytes(name)
}

// Float32 returns the named tensor converted to float32, as File.Float32
// does.
func (x *Index) Float32(name string) ([]float32, error) {
	f, ok := x.where[name]
	if !ok {
		return nil, fileErr(x.path, fmt.Errorf("no tensor %q", name))
	}
	return f.Float32(name)
}

// Close closes every shard.
func (x *Index) Close() error {
	var errs []error
	for _, f := range x.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// OpenModel opens a Hugging Face model folder: the shards of its
// IndexFileName if there is one, else its SingleFileName.
func OpenModel(dir string) (Reader, error) {
	idx := filepath.Join(dir, IndexFileName)
	switch _, err := os.Stat(idx); {
	case err == nil:
		x, err := OpenIndex(idx)
		if err != nil {
			return nil, err
		}
		return x, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	single := filepath.Join(dir, SingleFileName)
	switch _, err := os.Stat(single); {
	case err == nil:
		f, err := Open(single)
		if err != nil {
			return nil, err
		}
		return f, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	return nil, fmt.Errorf("safetensors: %s: holds neither %s nor %s", dir, IndexFileName, SingleFileName)
}
