// Package task holds multiple-choice datasets as Go values: readers for the real
// benchmarks in ../shared/data (ARC-Easy, ARC-Challenge, PIQA, WinoGrande,
// HellaSwag), a deterministic built-in synthetic suite that needs no downloads,
// seeded train/validation/test splits, and partitioning of items across
// federated clients (IID and Dirichlet label skew).
//
// # Items and how scorers use them
//
// An [Item] is one question with 2 or more choices and a gold index. Choice i
// is scored as the pair (item.ContextFor(i), item.Choices[i]):
//
//   - decoders score log P(item.Continuation(i) | item.ContextFor(i)), where
//     Continuation(i) = [TargetDelimiter] + Choices[i] (a single space), exactly
//     the request lm-evaluation-harness builds;
//   - encoders read (ContextFor(i), Choices[i]) as a sentence pair.
//
// ContextFor(i) is Context, except for partial scoring (WinoGrande), where the
// context differs per choice: Contexts is then non-nil, one per choice, and
// Context is empty.
//
// # Prompt formats (lm-evaluation-harness, zero-shot)
//
// Verified against EleutherAI/lm-evaluation-harness as stored in the reference
// index (files named below); the request construction (continuation = " " +
// choice, or for multiple_input tasks (context_i, " " + target)) was checked in
// lm_eval/api/task.py, ConfigurableTask.construct_requests.
//
//   - arc_easy, arc_challenge (lm_eval/tasks/arc/arc_easy.yaml; arc_challenge.yaml
//     includes it): doc_to_text "Question: {{question}}\nAnswer:", doc_to_choice
//     "{{choices.text}}", doc_to_target "{{choices.label.index(answerKey)}}".
//     Here: Context "Question: " + question + "\nAnswer:", Choices = choices.text,
//     Label = index of answerKey in choices.label (works for "A".."E" and "1".."5").
//   - piqa (lm_eval/tasks/piqa/piqa.yaml): doc_to_text "Question: {{goal}}\nAnswer:",
//     doc_to_choice "{{[sol1, sol2]}}", doc_to_target label.
//   - hellaswag (lm_eval/tasks/hellaswag/utils.py, hellaswag.yaml): query =
//     preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()),
//     choices = [preprocess(e) for e in endings], where preprocess strips, replaces
//     " [title]" with ". ", removes every "[...]" (non-greedy) and replaces "  " by
//     " " once. [LoadHellaSwagJSONL] does exactly this ([HellaSwagPreprocess],
//     [PyCapitalize]). The shared text file (hellaswag_val_full.txt.bz2) is already
//     preprocessed by its producer and is used verbatim by [LoadHellaSwagText]; it
//     differs slightly from today's harness (ctx_b is not capitalized there, e.g.
//     "... on a roof. he", and a few bracketed spans such as "[www.kiddio.org]" are
//     kept).
//   - winogrande (lm_eval/tasks/winogrande/default.yaml, preprocess_winogrande.py;
//     partial evaluation, Trinh & Le 2018): with i = sentence.index("_"),
//     doc_to_text = [sentence[:i] + option1, sentence[:i] + option2] (one context
//     per choice, multiple_input), doc_to_choice = [sentence[i+1:].strip()],
//     doc_to_target = {"1": 0, "2": 1}[answer]. Here: Contexts = those two
//     contexts, Choices = the shared target twice, Label from answer.
//
// # Split policy of Load
//
// See [Load]: ARC holds back [ARCTestFraction] of train as Test (seed
// [SplitSeed]); PIQA and HellaSwag split their only labelled set (validation)
// [TrainFraction]/rest into Train/Validation (seed [SplitSeed]); WinoGrande uses
// train_m and dev. Every split says so in its Note.
//
// # Synthetic suite
//
// [Synthetic] builds tasks from 8 families over a small vocabulary
// ([Vocabulary]); see [SyntheticFamilies] for what each tests and
// [SyntheticRelation] for related, conflicting and shifted pairs.
//
// # Errors
//
// Readers never drop an item: a malformed line, unknown answer key, label out
// of range, empty choice, empty file or mismatched label count is an error, a
// [*ParseError] naming the file and (1-based) line.
package task
