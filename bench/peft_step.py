#!/usr/bin/env python3
"""kronfed's Mistral-7B training step beside PEFT's LoKr and LoRA-8, one device.

    python3 bench/peft_step.py --client ./client [--layers 32] [--seqs 8] [--tokens 512]

The paper measured Kron-LoRA at 27.04 examples/s against LoRA-8 at 29.28 on an
A100 (7.65% slower). This script times the same training step four ways on one
GPU, one after another, and prints one table:

  kronfed Kron-LoRA   `client bench train --device cuda --shape mistral-7b --dA2 2 --json`
  kronfed LoRA-8      (the same run: it times both adapters on one uploaded base)
  PEFT LoKr           transformers' MistralForCausalLM + peft.LoKrConfig
  PEFT LoRA-8         the same model + peft.LoraConfig

The step, for all four: micro-batch --seqs sequences of --tokens random tokens
through a Mistral-7B-shaped decoder with random bf16 weights (hidden 4096, 32
heads / 8 KV heads of 128, SwiGLU FFN 14336, vocabulary 32000; --layers cuts
the depth), every target token predicted, an adapter on all seven linears of
every block (rank 8, alpha 32), backward, gradient clipping at norm 1, AdamW.
No activation checkpointing on either side.

The same factorization: PEFT's LoKr splits each weight with one
decompose_factor f into w1 (f x f) (x) w2_a.w2_b; with f = 2 that is exactly
Kron-LoRA with dA2 = 2 (lokr_w1 = A, 2 x 2; lokr_w2_a = B1, d_out/2 x 8;
lokr_w2_b = B2, 8 x d_in/2), so kronfed runs with --dA2 2. PEFT's LoKr forms
dW = w1 (x) (w2_a.w2_b) every step, the full d_out x d_in matrix per module;
kronfed never forms it.

Precision: bf16 frozen weights on both sides; PyTorch under
torch.autocast(bfloat16) with PEFT's fp32 adapter weights (its default),
kronfed with fp32 activations and adapters, bf16 GEMM inputs, fp32
accumulation. Dropout: kronfed's adapter input dropout 0.1 and PEFT LoRA's
lora_dropout 0.1; PEFT's LoKr has no input dropout (rank_dropout and
module_dropout 0). Peak memory: torch.cuda.max_memory_allocated per adapter;
kronfed's is its pool's peak per adapter (base included on both sides).

Needs a CUDA GPU, PyTorch, transformers and peft in this python3, and a
client built for the machine (`go build ./cmd/client`, or the static one
gpu/devcheck.sh builds). --skip-peft runs only kronfed's half (for a machine
without transformers and peft); --device cpu with --skip-peft checks the
script itself on a CPU at a tiny shape.
"""

import argparse
import json
import subprocess
import sys
import time

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PAPER = {"Kron-LoRA": 27.04, "LoRA-8": 29.28}  # examples/s on an A100, the paper's table


def kronfed_rows(args):
    """Runs client bench train and returns its rows as this table's."""
    cmd = [args.client, "bench", "train", "--json", "--device", args.device, "--shape", "mistral-7b",
           "--layers", str(args.layers), "--seqs", str(args.seqs), "--tokens", str(args.tokens),
           "--steps", str(args.steps), "--dA2", "2", "--precision", args.precision]
    t0 = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        # Say why and go on: PEFT's rows still tell something (a kronfed
        # step that does not fit is itself a result).
        print(f"peft_step: {' '.join(cmd)} failed ({out.returncode}):\n{out.stderr.strip()}", file=sys.stderr)
        return [{"system": "kronfed", "adapter": a, "failed": True, "peak_gib": 0.0} for a in ("Kron-LoRA", "LoRA-8")], args.device
    rep = json.loads(out.stdout)
    names = {"kron": "Kron-LoRA", "lora8": "LoRA-8"}
    rows = []
    for r in rep["results"]:
        rows.append({"system": "kronfed", "adapter": names[r["adapter"]], "tokens_per_sec": r["tokens_per_sec"],
                     "examples_per_sec": r["examples_per_sec"], "seconds_per_step": r["seconds_per_step"],
                     "peak_gib": r.get("device_peak_gib", 0.0)})
    print(f"kronfed: {rep['device']}, {rep['model']}, {rep['batch']} ({time.time() - t0:.0f} s)", file=sys.stderr)
    return rows, rep["device"]


def peft_rows(args):
    """Times PEFT's LoKr and LoRA-8 on a random Mistral-shaped model."""
    try:
        import torch
        import transformers
        import peft
    except ImportError as e:
        sys.exit(f"peft_step: PEFT's half needs torch, transformers and peft in this python3 ({e}); --skip-peft times kronfed alone")
    if not torch.cuda.is_available():
        sys.exit("peft_step: PEFT's half needs a CUDA GPU (torch.cuda.is_available() is False)")
    dev = torch.device("cuda")
    cfg = transformers.MistralConfig(hidden_size=4096, intermediate_size=14336, num_hidden_layers=args.layers,
                                     num_attention_heads=32, num_key_value_heads=8, head_dim=128, vocab_size=32000,
                                     max_position_embeddings=32768, sliding_window=4096, rms_norm_eps=1e-5,
                                     rope_theta=10000.0, use_cache=False, tie_word_embeddings=False)
    print(f"PEFT: torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, "
          f"{torch.cuda.get_device_name(0)}", file=sys.stderr)
    adapters = [
        ("LoKr", lambda: peft.LoKrConfig(r=8, alpha=32, target_modules=TARGETS, decompose_factor=2,
                                         rank_dropout=0.0, module_dropout=0.0)),
        ("LoRA-8", lambda: peft.LoraConfig(r=8, lora_alpha=32, lora_dropout=0.1, target_modules=TARGETS, bias="none")),
    ]
    rows = []
    for name, make in adapters:
        # A fresh model per adapter, built on the device in bf16 (random
        # initialization on the GPU: seconds, not the minutes of a CPU init).
        torch.manual_seed(1)
        torch.set_default_dtype(torch.bfloat16)
        try:
            with dev:
                model = transformers.AutoModelForCausalLM.from_config(cfg, attn_implementation="sdpa")
        finally:
            torch.set_default_dtype(torch.float32)
        model = peft.get_peft_model(model, make())
        if name == "LoKr":
            check_lokr_shapes(model)
        model.train()
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=3e-4)
        ids = torch.randint(cfg.vocab_size, (args.seqs, args.tokens), device=dev)
        labels = torch.randint(cfg.vocab_size, (args.seqs, args.tokens), device=dev)

        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = model(input_ids=ids, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

        torch.cuda.reset_peak_memory_stats()
        n = args.seqs * args.tokens
        try:
            for _ in range(2):  # warm-up: allocator, cuBLAS heuristics, AdamW state
                step()
            best = float("inf")
            for _ in range(args.steps):
                torch.cuda.synchronize()
                t = time.perf_counter()
                step()
                torch.cuda.synchronize()
                best = min(best, time.perf_counter() - t)
            rows.append({"system": "PEFT", "adapter": name, "tokens_per_sec": n / best, "examples_per_sec": args.seqs / best,
                         "seconds_per_step": best, "peak_gib": torch.cuda.max_memory_allocated() / 2**30})
        except torch.cuda.OutOfMemoryError:
            # LoKr forms every module's dW and autograd keeps it for the
            # backward: on a whole 7B model that alone is tens of GB.
            rows.append({"system": "PEFT", "adapter": name, "oom": True, "peak_gib": torch.cuda.max_memory_allocated() / 2**30})
            print(f"PEFT {name}: out of device memory at {args.seqs} x {args.tokens}", file=sys.stderr)
        del model, opt, params
        torch.cuda.empty_cache()
    return rows


def check_lokr_shapes(model):
    """PEFT's LoKr with decompose_factor 2 must give kronfed's dA2 = 2 shapes:
    lokr_w1 2x2, lokr_w2_a d_out/2 x 8, lokr_w2_b 8 x d_in/2."""
    for mod_name, mod in model.named_modules():
        if not hasattr(mod, "lokr_w1") or "default" not in mod.lokr_w1:
            continue
        base = mod.get_base_layer()
        d_out, d_in = base.out_features, base.in_features
        shape = lambda d: tuple(d["default"].shape) if "default" in d else None  # noqa: E731
        w1, w2a, w2b = shape(mod.lokr_w1), shape(mod.lokr_w2_a), shape(mod.lokr_w2_b)
        if w1 != (2, 2) or w2a != (d_out // 2, 8) or w2b != (8, d_in // 2):
            sys.exit(f"peft_step: {mod_name}: LoKr w1 {w1}, w2_a {w2a}, w2_b {w2b}; Kron-LoRA dA2 2 is "
                     f"(2, 2), ({d_out // 2}, 8), (8, {d_in // 2}): not the same factorization")
        return  # one module checked: all are built by the same rule


def table(rows, device, args):
    lines = [f"Training step on {device}: Mistral-7B shape ({args.layers} layers), random {args.precision} weights, "
             f"{args.seqs} sequences x {args.tokens} tokens, rank 8",
             "| system | adapter | tokens/s | examples/s | s/step | peak GiB |",
             "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if r.get("oom") or r.get("failed"):
            what = "out of memory" if r.get("oom") else "failed (see above)"
            lines.append(f"| {r['system']} | {r['adapter']} | {what} | | | {r['peak_gib']:.1f} |")
            continue
        lines.append(f"| {r['system']} | {r['adapter']} | {r['tokens_per_sec']:.0f} | {r['examples_per_sec']:.2f} | "
                     f"{r['seconds_per_step']:.3f} | {r['peak_gib']:.1f} |")
    by = {(r["system"], r["adapter"]): r for r in rows if not (r.get("oom") or r.get("failed"))}
    kron, lora = by.get(("kronfed", "Kron-LoRA")), by.get(("kronfed", "LoRA-8"))
    if kron and lora:
        lines.append(f"kronfed Kron-LoRA / LoRA-8 step time: {kron['seconds_per_step'] / lora['seconds_per_step']:.3f} "
                     f"(paper, A100: {PAPER['LoRA-8'] / PAPER['Kron-LoRA']:.3f}; target ≤ 1.00)")
    for other in ("LoKr", "LoRA-8"):
        o = by.get(("PEFT", other))
        if kron and o:
            lines.append(f"kronfed Kron-LoRA / PEFT {other} throughput: {kron['tokens_per_sec'] / o['tokens_per_sec']:.3f}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--client", required=True, help="a built kronfed client binary")
    ap.add_argument("--device", default="cuda", help="kronfed's --device (cuda, cuda:N; cpu only with --skip-peft)")
    ap.add_argument("--layers", type=int, default=32, help="decoder layers (32: the whole Mistral-7B)")
    ap.add_argument("--seqs", type=int, default=8, help="sequences per micro-batch")
    ap.add_argument("--tokens", type=int, default=512, help="tokens per sequence")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per adapter (the best is reported)")
    ap.add_argument("--precision", default="bf16", help="kronfed's frozen weights (bf16 on a GPU)")
    ap.add_argument("--skip-peft", action="store_true", help="time kronfed alone")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args()
    if args.device == "cpu" and not args.skip_peft:
        sys.exit("peft_step: PEFT's half runs on a GPU; --device cpu needs --skip-peft")
    rows, device = kronfed_rows(args)
    if not args.skip_peft:
        rows += peft_rows(args)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(table(rows, device, args))
    # kronfed failing is a failed check; PEFT out of memory is a result.
    sys.exit(1 if any(r.get("failed") for r in rows) else 0)


if __name__ == "__main__":
    main()
