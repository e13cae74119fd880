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
// folder (task.Names) or a built-in synthetic family (task.SyntheticNames),
// generated with seed.
func LoadSplits(name, dataDir string, seed uint64) (*task.Splits, error) {
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
	return nil, fmt.Errorf("unknown task %q (datasets: %v; synthetic: %v)", name, task.Names(), task.SyntheticNames())
}
