// Package model describes the frozen transformers kronfed adapts: their Hugging
// Face configurations, the linear layers that carry adapters, and (as the engine
// grows) their forward and backward passes, loaders and tokenizers.
package model
