// Package train fine-tunes adapters locally: batching multiple-choice items
// for a model, AdamW with the Hugging Face Trainer's defaults, the linear
// learning-rate schedule, gradient-norm clipping, evaluation, and choosing the
// epoch with the best validation accuracy.
package train
