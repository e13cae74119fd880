package model

import (
	"fmt"

	"github.com/kronfed/kronfed/adapter"
)

// ModuleParams is one adapted or fully trained layer in a parameter report.
type ModuleParams struct {
	Name    string                `json:"name"`
	DOut    int                   `json:"d_out"`
	DIn     int                   `json:"d_in"`
	Trained string                `json:"trained"` // "adapter" or "full"
	Factors []adapter.FactorShape `json:"factors,omitempty"`
	Params  int                   `json:"params"`
	Bytes32 int                   `json:"bytes_32bit"`
	Bytes8  int                   `json:"bytes_8bit"`
	Bytes4  int                   `json:"bytes_4bit"`
}

// ParamReport counts a model's trainable parameters under an adapter config.
type ParamReport struct {
	ModelType       string         `json:"model_type"`
	Adapter         string         `json:"adapter"`
	Rank            int            `json:"rank"`
	DA2             int            `json:"dA2,omitempty"`
	Modules         []ModuleParams `json:"modules"`
	AdapterParams   int            `json:"adapter_params"`
	HeadParams      int            `json:"head_params"`
	TrainableParams int            `json:"trainable_params"`
	UploadBytes32   int            `json:"upload_bytes_32bit"`
	UploadBytes8    int            `json:"upload_bytes_8bit"`
	UploadBytes4    int            `json:"upload_bytes_4bit"`
}

// CountParams puts the adapter on every adapted linear of the model, counts
// factors and the fully trained head, and sizes the upload at 32, 8 and 4 bits
// (per-row float32 scales below 32 bits; biases of the head count as 1-row
// tensors). ac's dA2 default is resolved from the hidden size.
func CountParams(c *Config, ac adapter.Config) (*ParamReport, error) {
	if err := ac.Validate(); err != nil {
		return nil, err
	}
	ac = ac.Resolve(c.Hidden)
	r := &ParamReport{ModelType: c.ModelType, Adapter: string(ac.Kind), Rank: ac.Rank}
	if ac.Kind == adapter.KindKron {
		r.DA2 = ac.DA2
	}
	for _, l := range c.AdaptedLinears() {
		fs, err := ac.Factors(l.DOut, l.DIn)
		if err != nil {
			return nil, fmt.Errorf("module %s: %w", l.Name, err)
		}
		m := ModuleParams{Name: l.Name, DOut: l.DOut, DIn: l.DIn, Trained: "adapter", Factors: fs}
		for _, f := range fs {
			m.add(f.Rows, f.Cols)
		}
		r.AdapterParams += m.Params
		r.Modules = append(r.Modules, m)
	}
	for _, l := range c.HeadLinears() {
		m := ModuleParams{Name: l.Name, DOut: l.DOut, DIn: l.DIn, Trained: "full"}
		m.add(l.DOut, l.DIn)
		if l.Bias {
			m.add(1, l.DOut)
		}
		r.HeadParams += m.Params
		r.Modules = append(r.Modules, m)
	}
	r.TrainableParams = r.AdapterParams + r.HeadParams
	for _, m := range r.Modules {
		r.UploadBytes32 += m.Bytes32
		r.UploadBytes8 += m.Bytes8
		r.UploadBytes4 += m.Bytes4
	}
	return r, nil
}

func (m *ModuleParams) add(rows, cols int) {
	m.Params += rows * cols
	m.Bytes32 += adapter.UploadBytes(rows, cols, 32)
	m.Bytes8 += adapter.UploadBytes(rows, cols, 8)
	m.Bytes4 += adapter.UploadBytes(rows, cols, 4)
}
