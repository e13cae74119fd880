package train

import (
	"fmt"
	"slices"

	"github.com/kronfed/kronfed/task"
)

// SyntheticSize is how many items LoadSplits generates for a synthetic task:
// 80% train, 10% validation, 10% test.
const SyntheticSize = 2000

// LoadSplits resolves a task name to its splits: a dataset of the shared data
// folder (task.Names), a built-in synthetic family (task.SyntheticNames),
// generated with seed, or the path of your own multiple-choice JSON-lines
// file (task.LoadJSONL; split with seed when its lines name no split).
func LoadSplits(name, dataDir string, seed uint64) (*task.Splits, error) {
	if task.IsJSONLPath(name) {
		return task.LoadJSONL(name, seed)
	}
	if slices.Contains(task.SyntheticNames(), name) {
		all, err := task.Synthetic(name, SyntheticSize, seed)
		if err != nil {
			return nil, err
		}
		train, rest := all.Split(0.8, seed)
		val, test := rest.Split(0.5, seed+1)
		return &task.Splits{Name: name, Train: train, Validation: val, Test: test,
			Note: fmt.Sprintf("synthetic %s: %d items from seed %d, split 80/10/10", name, SyntheticSize, seed)}, nil
	}
	if slices.Contains(task.Names(), name) {
		return task.Load(name, dataDir)
	}
	return nil, fmt.Errorf("unknown task %q (datasets: %v; synthetic: %v; or a file of your own questions, path/to/file.jsonl)", name, task.Names(), task.SyntheticNames())
}
