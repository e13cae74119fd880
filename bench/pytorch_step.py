#!/usr/bin/env python3
"""The same DistilBERT-shaped training step in kronfed and in PyTorch, side by side.

    python3 bench/pytorch_step.py --client ./client [--threads 1,2] [--steps 5]

One step, as `client bench train` times it: 8 sequences (2 questions x 4
choices) of 128 tokens through a frozen 6-layer, 768-wide DistilBERT-shaped
encoder with random weights; an adapter on each of the 36 block linears
(Kron-LoRA: A 4x2 (x) B1 (d_out/4 x 8) . B2 (8 x d_in/2), the paper's dA2 for
hidden 768, or LoRA rank 8; alpha 32, input dropout 0.1); the multiple-choice
head (pre_classifier, ReLU, dropout 0.2, classifier) trained too; hidden and
attention dropout 0.1; cross-entropy over the 4 choices, backward (input
gradients through every frozen layer), gradient clipping at norm 1, AdamW.
The Kron-LoRA adapter is applied without forming dW (x -> x.B2^T -> .B1^T ->
mixed by A), as kronfed does.

Each thread count runs PyTorch in a fresh process with its thread pools set
the fair way: torch.set_num_threads(N), OMP_NUM_THREADS=N,
OPENBLAS_NUM_THREADS=N and OMP_WAIT_POLICY=PASSIVE (with the default ACTIVE
policy the OpenMP and OpenBLAS pools spin against each other on a small
machine, which makes PyTorch look slower than it is), and OPENBLAS_CORETYPE
set to the fastest kernels OpenBLAS has for this CPU, timed (an OpenBLAS
older than the CPU falls back to older kernels: openblas_coretype). kronfed runs as
`GOMAXPROCS=N client bench train --json`. The best of --steps timed steps
(after two warm-up steps) is reported for both.

Needs PyTorch with an optimized BLAS (Debian: apt-get install python3-torch
libopenblas0-pthread, and run Debian's /usr/bin/python3; without OpenBLAS,
Debian's torch falls back to the reference BLAS and the script warns) and a
built client (`go build ./cmd/client`).
"""

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time


def cpu_name():
    fam = model = name = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                k, _, v = line.partition(":")
                k, v = k.strip(), v.strip()
                if k == "model name" and not name:
                    name = v
                elif k == "cpu family" and not fam:
                    fam = v
                elif k == "model" and not model:
                    model = v
    except OSError:
        return platform.processor() or "unknown CPU"
    return f"{name} (family {fam} model {model})"


def worker(args):
    """Times PyTorch steps in this process (its environment already set)."""
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    d, ff, layers, heads, vocab, maxpos = 768, 3072, 6, 12, 30522, 512
    hd = d // heads
    B, C, T = args.seqs // 4, 4, args.tokens
    n = B * C

    def frozen(*shape, std=0.02):
        return torch.randn(*shape) * std

    emb_w, emb_p = frozen(vocab, d), frozen(maxpos, d)
    ln_e = (torch.ones(d), torch.zeros(d))
    blocks = []
    for _ in range(layers):
        blocks.append({
            "q": (frozen(d, d), torch.zeros(d)), "k": (frozen(d, d), torch.zeros(d)),
            "v": (frozen(d, d), torch.zeros(d)), "o": (frozen(d, d), torch.zeros(d)),
            "ff1": (frozen(ff, d), torch.zeros(ff)), "ff2": (frozen(d, ff), torch.zeros(d)),
            "ln1": (torch.ones(d), torch.zeros(d)), "ln2": (torch.ones(d), torch.zeros(d)),
        })

    params = []

    def new_adapter(kind, d_out, d_in):
        # Initialized as kronfed does: one factor zero, so dW starts at 0.
        if kind == "kron":
            a = (torch.randn(4, 2) * 0.02).requires_grad_()
            b1 = torch.zeros(d_out // 4, 8).requires_grad_()
            b2 = (torch.randn(8, d_in // 2) * (1 / math.sqrt(d_in // 2))).requires_grad_()
            ps = (a, b1, b2)
        else:
            la = (torch.randn(8, d_in) * (1 / math.sqrt(d_in))).requires_grad_()
            lb = torch.zeros(d_out, 8).requires_grad_()
            ps = (la, lb)
        params.extend(ps)
        return ps

    scale = 32 / 8

    def adapted(x, w, bias, ad, kind):
        y = F.linear(x, w, bias)
        xd = F.dropout(x, 0.1, True)
        if kind == "kron":
            a, b1, b2 = ad
            lead = xd.shape[:-1]
            t = xd.reshape(-1, 2, w.shape[1] // 2) @ b2.t()      # (N, 2, r)
            u = t @ b1.t()                                        # (N, 2, d_out/4)
            z = torch.einsum("ij,njk->nik", a, u)                 # (N, 4, d_out/4)
            return y + scale * z.reshape(*lead, w.shape[0])
        la, lb = ad
        return y + scale * ((xd @ la.t()) @ lb.t())

    def build(kind):
        params.clear()
        ads = []
        for blk in blocks:
            ads.append({k: new_adapter(kind, blk[k][0].shape[0], blk[k][0].shape[1]) for k in ("q", "k", "v", "o", "ff1", "ff2")})
        pre = (frozen(d, d).requires_grad_(), torch.zeros(d).requires_grad_())
        cls = (frozen(1, d).requires_grad_(), torch.zeros(1).requires_grad_())
        params.extend([*pre, *cls])
        return ads, pre, cls, torch.optim.AdamW(list(params), lr=3e-4)

    ids = torch.randint(0, vocab, (n, T))
    mask = torch.zeros(n, 1, 1, T)  # every token real (additive mask)
    labels = torch.zeros(B, dtype=torch.long)

    def step(kind, ads, pre, cls, opt):
        opt.zero_grad(set_to_none=True)
        h = emb_w[ids] + emb_p[:T]
        h = F.dropout(F.layer_norm(h, (d,), *ln_e, 1e-12), 0.1, True)
        for blk, ad in zip(blocks, ads):
            def split(x):
                return x.view(n, T, heads, hd).transpose(1, 2)
            q = split(adapted(h, *blk["q"], ad["q"], kind))
            k = split(adapted(h, *blk["k"], ad["k"], kind))
            v = split(adapted(h, *blk["v"], ad["v"], kind))
            att = F.dropout(torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, -1), 0.1, True)
            ctx = (att @ v).transpose(1, 2).reshape(n, T, d)
            h = F.layer_norm(h + F.dropout(adapted(ctx, *blk["o"], ad["o"], kind), 0.1, True), (d,), *blk["ln1"], 1e-12)
            f = F.gelu(adapted(h, *blk["ff1"], ad["ff1"], kind))
            h = F.layer_norm(h + F.dropout(adapted(f, *blk["ff2"], ad["ff2"], kind), 0.1, True), (d,), *blk["ln2"], 1e-12)
        x = F.dropout(F.relu(F.linear(h[:, 0], *pre)), 0.2, True)
        logits = F.linear(x, *cls).view(B, C)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    out = {}
    for kind in ("kron", "lora8"):
        state = build("kron" if kind == "kron" else "lora")
        k = "kron" if kind == "kron" else "lora"
        for _ in range(2):
            step(k, *state)
        best = math.inf
        for _ in range(args.steps):
            t0 = time.perf_counter()
            step(k, *state)
            best = min(best, time.perf_counter() - t0)
        out[kind] = {"seconds_per_step": best, "tokens_per_sec": n * T / best}
    out["torch"] = torch.__version__
    out["blas"] = loaded_blas()
    print(json.dumps(out))


def loaded_blas():
    """The BLAS library this process really loaded (Debian's torch links the
    generic libblas.so.3, which the alternatives system points at the
    reference BLAS or at OpenBLAS): PyTorch's speed depends on which."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
    except OSError:
        return "unknown"
    names = sorted({os.path.realpath(p) for p in libs})
    return ", ".join(names) or "none found"


SGEMM_PROBE = """
import os, time, torch
torch.set_num_threads(1)
a, b = torch.randn(1024, 768), torch.randn(768, 3072)
for _ in range(3):
    a @ b
t = time.perf_counter()
for _ in range(10):
    a @ b
print("gflops", 2 * 1024 * 768 * 3072 * 10 / (time.perf_counter() - t) / 1e9)
"""


def openblas_coretype():
    """The OPENBLAS_CORETYPE the PyTorch worker runs with, and why.

    OpenBLAS picks its kernels by CPU model, and a release older than the CPU
    falls back to older ones: Debian's OpenBLAS 0.3.21 takes an Emerald Rapids
    Xeon (family 6 model 207) for a Prescott (SGEMM 32 GFLOP/s on one core,
    where its SkylakeX kernels do 147) and a Zen 5 EPYC for a Haswell (AVX2
    only, its 512-bit FMA units idle). Either would flatter kronfed. Unless
    the caller set OPENBLAS_CORETYPE, time one single-threaded SGEMM with the
    kernels as detected and with each wider set this CPU can run (Haswell
    with AVX2, SkylakeX with AVX-512F) and give PyTorch the fastest."""
    if os.environ.get("OPENBLAS_CORETYPE"):
        return os.environ["OPENBLAS_CORETYPE"], "set by the caller"
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    except OSError:
        flags = []
    candidates = [""] + [core for flag, core in (("avx2", "Haswell"), ("avx512f", "SkylakeX")) if flag in flags]
    timed = []
    for core in candidates:
        env = dict(os.environ, OPENBLAS_VERBOSE="2", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        if core:
            env["OPENBLAS_CORETYPE"] = core
        p = subprocess.run([sys.executable, "-c", SGEMM_PROBE], env=env, capture_output=True, text=True)
        name, gflops = core, 0.0
        for line in (p.stdout + p.stderr).splitlines():
            if line.startswith("Core:") and not core:
                name = "detected " + line.split(":", 1)[1].strip()
            elif line.startswith("gflops"):
                gflops = float(line.split()[1])
        timed.append((gflops, core, name or "detected"))
    best = max(timed)
    why = "fastest one-thread SGEMM of " + ", ".join(f"{name} {g:.0f}" for g, _, name in timed) + " GFLOP/s"
    return best[1], why


def run_torch(args, threads, coretype):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads), OMP_WAIT_POLICY="PASSIVE")
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    cmd = [sys.executable, __file__, "--worker", "--threads", str(threads), "--steps", str(args.steps),
           "--seqs", str(args.seqs), "--tokens", str(args.tokens)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"pytorch_step: the PyTorch worker failed:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_kronfed(args, threads):
    env = dict(os.environ, GOMAXPROCS=str(threads))
    cmd = [args.client, "bench", "train", "--json", "--steps", str(args.steps), "--seqs", str(args.seqs),
           "--tokens", str(args.tokens)]
    if args.precision:
        cmd += ["--precision", args.precision]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"pytorch_step: {' '.join(cmd)} failed:\n{p.stderr}")
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--client", default="./client", help="kronfed's client binary (go build ./cmd/client)")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per adapter (best reported)")
    ap.add_argument("--seqs", type=int, default=8, help="sequences per step (multiple of 4)")
    ap.add_argument("--tokens", type=int, default=128, help="tokens per sequence")
    ap.add_argument("--precision", default="", help="kronfed frozen-weight precisions (default: the client's: fp32, and bf16 where AVX512_BF16)")
    ap.add_argument("--json", action="store_true", help="print JSON")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.seqs % 4 or args.seqs < 4 or args.steps < 1 or not 1 <= args.tokens <= 512:
        ap.error("--seqs must be a positive multiple of 4, --steps >= 1, --tokens in 1..512")
    try:
        threads = [int(t) for t in args.threads.split(",")]
        if any(t < 1 for t in threads):
            raise ValueError
    except ValueError:
        ap.error(f"--threads {args.threads!r}: want positive integers, comma-separated")
    if args.worker:
        args.threads = threads[0]
        worker(args)
        return
    if not os.access(args.client, os.X_OK):
        ap.error(f"--client {args.client}: not an executable (build it: go build ./cmd/client)")

    coretype, why = openblas_coretype()
    rows = []
    for th in threads:
        kf = run_kronfed(args, th)
        pt = run_torch(args, th, coretype)
        for kind in ("kron", "lora8"):
            for r in kf["results"]:
                if r["adapter"] == kind:
                    rows.append({"threads": th, "adapter": kind, "system": f"kronfed {r.get('precision', 'fp32')}",
                                 "tokens_per_sec": r["tokens_per_sec"], "vs_pytorch": r["tokens_per_sec"] / pt[kind]["tokens_per_sec"]})
            rows.append({"threads": th, "adapter": kind, "system": f"PyTorch {pt['torch']} fp32",
                         "tokens_per_sec": pt[kind]["tokens_per_sec"], "vs_pytorch": 1.0})
        blas = pt["blas"]
    report = {"cpu": cpu_name(), "batch": f"{args.seqs} sequences x {args.tokens} tokens", "pytorch_blas": blas,
              "openblas_coretype": coretype or "as detected", "openblas_coretype_why": why, "rows": rows}
    if "openblas" not in blas.lower() and "mkl" not in blas.lower():
        print(f"pytorch_step: warning: PyTorch runs on {blas}, not an optimized BLAS; the comparison flatters kronfed "
              "(Debian: apt-get install libopenblas0-pthread)", file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['cpu']}; DistilBERT-shaped training step, {report['batch']}")
    print(f"PyTorch BLAS: {report['pytorch_blas']}")
    print(f"OPENBLAS_CORETYPE: {report['openblas_coretype']} ({why})")
    print(f"{'threads':>7}  {'adapter':<7}  {'system':<22}  {'tokens/s':>9}  {'x PyTorch':>9}")
    for r in rows:
        print(f"{r['threads']:>7}  {r['adapter']:<7}  {r['system']:<22}  {r['tokens_per_sec']:>9.0f}  {r['vs_pytorch']:>9.2f}")


if __name__ == "__main__":
    main()
