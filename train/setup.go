package train

import (
	"math/rand/v2"

	"github.com/kronfed/kronfed/adapter"
	"github.com/kronfed/kronfed/model"
	"github.com/kronfed/kronfed/task"
)

// LoadModel opens a model as model.Load does, and the built-in models over
// the synthetic tasks' vocabulary: "builtin" (or its name "kronfed-tiny"),
// the pretrained model.Builtin every command and federation means by
// --model builtin, and "builtin-random" ("kronfed-tiny-random"), the same
// architecture with model.BuiltinSeed's random weights.
func LoadModel(path string) (*model.Model, error) {
	switch path {
	case model.BuiltinPath, model.BuiltinName:
		file, err := BuiltinFile()
		if err != nil {
			return nil, err
		}
		return model.Builtin(file, task.Vocabulary())
	case model.BuiltinRandomPath, model.BuiltinRandomName:
		return model.BuiltinRandom(model.BuiltinSeed, task.Vocabulary())
	}
	return model.Load(path)
}

// NewAdapterSet puts adapters of config ac on every targeted linear of m,
// plus a fresh classification head for encoders, initialized from seed. Every
// client and the coordinator build the same shapes this way.
func NewAdapterSet(m *model.Model, ac adapter.Config, seed uint64) (*adapter.Set, error) {
	if err := ac.Validate(); err != nil {
		return nil, err
	}
	ac = ac.Resolve(m.Cfg.Hidden)
	rng := rand.New(rand.NewPCG(seed, 0x747261696e))
	set, err := adapter.NewSet(ac, m.Name, m.Targets(), rng)
	if err != nil {
		return nil, err
	}
	if m.BERT != nil {
		set.Dense = model.NewHead(m.Cfg, rng)
	}
	return set, nil
}

// NewLearner binds set to the loaded model as the right kind of learner:
// a decoder scores continuations, an encoder reads (context, choice) pairs
// of at most maxLen tokens. It computes on the CPU with the base as it is
// (fp32, or bf16 after UsePrecision); Engine.NewLearner is the same on any
// engine.
func NewLearner(m *model.Model, set *adapter.Set, maxLen int, rng *rand.Rand) (Learner, error) {
	return CPU.bindLearner(m, set, maxLen, rng)
}
