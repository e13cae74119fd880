package safetensors

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// writeSharded writes a two-shard model folder in the transformers layout
// and returns its directory.
func writeSharded(t *testing.T, weightMap map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	shard1 := []Tensor{
		F32Tensor("embed.weight", []int{2, 2}, []float32{1, 2, 3, 4}),
		BF16Tensor("layers.0.w", []int{2}, []float32{0.5, -0.5}),
	}
	shard2 := []Tensor{
		F16Tensor("layers.1.w", []int{3}, []float32{1, 2, 3}),
		{Name: "pos", DType: I64, Shape: []int{1}, Data: []byte{7, 0, 0, 0, 0, 0, 0, 0}},
	}
	if err := WriteFile(filepath.Join(dir, "model-00001-of-00002.safetensors"), map[string]string{"format": "pt"}, shard1); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(dir, "model-00002-of-00002.safetensors"), map[string]string{"format": "pt"}, shard2); err != nil {
		t.Fatal(err)
	}
	if weightMap == nil {
		weightMap = map[string]string{
			"embed.weight": "model-00001-of-00002.safetensors",
			"layers.0.w":   "model-00001-of-00002.safetensors",
			"layers.1.w":   "model-00002-of-00002.safetensors",
			"pos":          "model-00002-of-00002.safetensors",
		}
	}
	idx, err := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 36}, "weight_map": weightMap})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, IndexFileName), idx, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestIndex(t *testing.T) {
	dir := writeSharded(t, nil)
	for _, path := range []string{dir, filepath.Join(dir, IndexFileName)} {
		x, err := OpenIndex(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := x.Metadata()["total_size"]; got != json.Number("36") {
			t.Errorf("total_size %v (%T)", got, got)
		}
		if got := x.Shards(); !slices.Equal(got, []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
			t.Errorf("shards %v", got)
		}
		var names []string
		for _, ti := range x.Tensors() {
			names = append(names, ti.Name)
		}
		if !slices.Equal(names, []string{"embed.weight", "layers.0.w", "layers.1.w", "pos"}) {
			t.Errorf("tensors %v", names)
		}
		if ti, ok := x.Tensor("layers.1.w"); !ok || ti.DType != F16 || !slices.Equal(ti.Shape, []int{3}) {
			t.Errorf("layers.1.w: %+v %v", ti, ok)
		}
		if v, err := x.Float32("layers.1.w"); err != nil || !slices.Equal(v, []float32{1, 2, 3}) {
			t.Errorf("layers.1.w = %v, %v", v, err)
		}
		if v, err := x.Float32("embed.weight"); err != nil || !slices.Equal(v, []float32{1, 2, 3, 4}) {
			t.Errorf("embed.weight = %v, %v", v, err)
		}
		if b, err := x.Bytes("pos"); err != nil || b[0] != 7 {
			t.Errorf("pos = %v, %v", b, err)
		}
		if _, err := x.Bytes("nope"); err == nil || err.Error() != "safetensors: "+filepath.Join(dir, IndexFileName)+`: no tensor "nope"` {
			t.Errorf("missing: %v", err)
		}
		if err := x.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestOpenModel(t *testing.T) {
	dir := writeSharded(t, nil)
	r, err := OpenModel(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.(*Index); !ok {
		t.Errorf("sharded folder opened as %T", r)
	}
	r.Close()

	single := t.TempDir()
	if err := WriteFile(filepath.Join(single, SingleFileName), nil, knownTensors()); err != nil {
		t.Fatal(err)
	}
	r, err = OpenModel(single)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.(*File); !ok {
		t.Errorf("single-file folder opened as %T", r)
	}
	if v, err := r.Float32("a"); err != nil || !slices.Equal(v, []float32{1, -2}) {
		t.Errorf("a = %v, %v", v, err)
	}
	r.Close()

	empty := t.TempDir()
	if _, err := OpenModel(empty); err == nil || err.Error() != "safetensors: "+empty+": holds neither model.safetensors.index.json nor model.safetensors" {
		t.Errorf("empty folder: %v", err)
	}
	// A broken index is reported, not skipped in favour of a single file.
	if err := os.WriteFile(filepath.Join(single, IndexFileName), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r, err := OpenModel(single); err == nil || r != nil {
		t.Errorf("broken index: %v %v", r, err)
	}
}

func TestIndexRejections(t *testing.T) {
	const s1, s2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
	full := func() map[string]string {
		return map[string]string{"embed.weight": s1, "layers.0.w": s1, "layers.1.w": s2, "pos": s2}
	}
	with := func(edit func(m map[string]string)) map[string]string {
		m := full()
		edit(m)
		return m
	}
	cases := []struct {
		name string
		wm   map[string]string
		want string
	}{
		{"tensor not in its shard", with(func(m map[string]string) { m["ghost"] = s1 }), `tensor "ghost": weight_map puts it in ` + s1 + `, which has no such tensor`},
		{"tensor in wrong shard", with(func(m map[string]string) { m["pos"] = s1 }), `tensor "pos": weight_map puts it in ` + s1 + `, which has no such tensor`},
		{"unmapped tensor", with(func(m map[string]string) { delete(m, "layers.0.w") }), `tensor "layers.0.w": present in shard ` + s1 + ` but missing from weight_map`},
		{"path escape", with(func(m map[string]string) { m["pos"] = "../" + s2 }), `tensor "pos": shard "../` + s2 + `" is not a plain file name in the index's directory`},
		{"absolute path", with(func(m map[string]string) { m["pos"] = "/etc/passwd" }), `tensor "pos": shard "/etc/passwd" is not a plain file name in the index's directory`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := writeSharded(t, c.wm)
			_, err := OpenIndex(dir)
			want := "safetensors: " + filepath.Join(dir, IndexFileName) + ": " + c.want
			if err == nil || err.Error() != want {
				t.Errorf("error\n got %v\nwant %s", err, want)
			}
		})
	}

	t.Run("missing shard file", func(t *testing.T) {
		dir := writeSharded(t, with(func(m map[string]string) { m["x"] = "model-00003-of-00003.safetensors" }))
		_, err := OpenIndex(dir)
		if err == nil || !strings.Contains(err.Error(), "model-00003-of-00003.safetensors") || !strings.Contains(err.Error(), "a shard listed by "+filepath.Join(dir, IndexFileName)) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("corrupt shard", func(t *testing.T) {
		dir := writeSharded(t, nil)
		if err := os.WriteFile(filepath.Join(dir, s2), rawFile(`{"x":1}`, nil), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := OpenIndex(dir)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, s2)+`: tensor "x": entry: expected '{', found number 1`) {
			t.Errorf("got %v", err)
		}
	})

	raw := []struct {
		name, json, want string
	}{
		{"no weight_map", `{"metadata":{}}`, `missing "weight_map"`},
		{"null weight_map", `{"weight_map":null}`, `"weight_map" must be an object of strings, found null`},
		{"duplicate tensor", `{"weight_map":{"a":"x.safetensors","a":"y.safetensors"}}`, `"weight_map": key "a" appears twice`},
		{"non-string shard", `{"weight_map":{"a":1}}`, `"weight_map": key "a": value must be a string, found number 1`},
		{"metadata not object", `{"metadata":[],"weight_map":{}}`, `"metadata" must be an object, found an array`},
		{"metadata string", `{"metadata":"x","weight_map":{}}`, `"metadata" must be an object, found a scalar`},
		{"trailing data", `{"weight_map":{}} {}`, "unexpected data after the JSON object"},
		{"duplicate key", `{"weight_map":{},"weight_map":{}}`, `key "weight_map" appears twice`},
		{"not json", `weight_map`, "invalid JSON: invalid character 'w' looking for beginning of value"},
	}
	for _, c := range raw {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "idx.json")
			if err := os.WriteFile(path, []byte(c.json), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := OpenIndex(path)
			if want := "safetensors: " + path + ": " + c.want; err == nil || err.Error() != want {
				t.Errorf("error\n got %v\nwant %s", err, want)
			}
		})
	}

	// Unknown top-level keys are ignored, and an empty map is an empty model.
	path := filepath.Join(t.TempDir(), "idx.json")
	if err := os.WriteFile(path, []byte(`{"extra":[1,{"a":2}],"weight_map":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	x, err := OpenIndex(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(x.Tensors()) != 0 || !reflect.DeepEqual(x.Metadata(), map[string]any{}) {
		t.Errorf("empty index: %v %v", x.Tensors(), x.Metadata())
	}
}
