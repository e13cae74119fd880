#!/usr/bin/env bash
# The GPU device check: parity tests of the CUDA engine against the CPU
# engine, and a Mistral-7B-shaped training-step benchmark, on a machine with
# an NVIDIA GPU but no Go toolchain.
#
#   bash gpu/devcheck.sh build    # here: static test binaries into .devcheck/
#   bash gpu/devcheck.sh run      # on the GPU machine, from the repository root
#
# `run` prints one table: the device, the libraries found, each test (PASS,
# FAIL or SKIP with its reason) and the benchmark's tokens/s. Its exit status
# is non-zero when any test failed. `build` copies stories260K (for the
# generation test) from ../shared (or $KRONFED_SHARED) into .devcheck/shared.
#
# With the device tool: build here, then run `bash gpu/devcheck.sh run` there
# with carry [".devcheck"] and a timeout that leaves room for a rerun.
set -uo pipefail
cd "$(dirname "$0")/.."
out=.devcheck

build() {
	export PATH="$PATH:/usr/local/go/bin"
	mkdir -p "$out"
	# Stripped (-s -w): the binaries travel to the device machine, 64 MiB in all.
	for pkg in gpu/cuda gpu/kernels gpu train; do
		CGO_ENABLED=0 go test -c -ldflags="-s -w" -o "$out/${pkg//\//-}.test" "./$pkg" || exit 1
	done
	rm -rf "$out/logs" "$out"/sim-*
	# The commands the federation checks run (GPU clients, part 2),
	# gzipped: everything carried must fit in 64 MiB.
	for cmd in client simulate; do
		CGO_ENABLED=0 go build -ldflags="-s -w" -o "$out/$cmd" "./cmd/$cmd" || exit 1
	done
	# The pretrained built-in model (simulate's default base), pretrained
	# here once if need be, so the device does not spend minutes on it.
	"$out/client" eval --model builtin --task word-category --limit 8 >/dev/null || exit 1
	gzip -f "$out/client" "$out/simulate" || exit 1
	cache="${KRONFED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kronfed}"
	mkdir -p "$out/cache" && cp "$cache/kronfed-tiny-v1.safetensors" "$out/cache/" || exit 1
	# The device machine gets the working tree, not ../shared: take the one
	# real model the tests read along (1 MB, in the ignored .devcheck/).
	shared="${KRONFED_SHARED:-../shared}"
	if [ -f "$shared/models/stories260K.gguf" ]; then
		mkdir -p "$out/shared/models"
		cp "$shared/models/stories260K.gguf" "$out/shared/models/"
	fi
	echo "built: $(ls "$out" | tr '\n' ' ')"
}

run() {
	[ -d "$out" ] || { echo "devcheck: $out missing: run 'bash gpu/devcheck.sh build' first" >&2; exit 2; }
	export KRONFED_KERNEL_CACHE="${KRONFED_KERNEL_CACHE:-$PWD/$out/kernel-cache}"
	if [ -z "${KRONFED_SHARED:-}" ]; then
		KRONFED_SHARED=$PWD/../shared
		[ -d "$out/shared" ] && KRONFED_SHARED=$PWD/$out/shared
	fi
	export KRONFED_SHARED
	export KRONFED_REQUIRE_GPU=1 # a device test that cannot open the GPU fails instead of skipping
	logs="$out/logs"
	mkdir -p "$logs"
	echo "## device"
	nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | sed 's/^/    /'
	fail=0
	root=$PWD
	for pkg in gpu/cuda gpu/kernels gpu train; do
		bin=${pkg//\//-}
		run=.
		[ "$pkg" = train ] && run='GPU|OpenEngine' # train's CPU tests run in CI
		(cd "$pkg" && "$root/$out/$bin.test" -test.v -test.count=1 -test.timeout=300s -test.run "$run") >"$logs/$bin.log" 2>&1 || fail=1
		echo "## $pkg"
		# One line per test and subtest: status, name, time, and why it failed or skipped.
		awk '
			/^=== (RUN|CONT)/ { cur = $3; next }
			/\.go:[0-9]+: / { if (!(cur in why)) { m = $0; sub(/^ *[^ ]+\.go:[0-9]+: /, "", m); why[cur] = m } next }
			/^ *--- (PASS|FAIL|SKIP)/ {
				st = $2; sub(":", "", st)
				printf "    %-5s %-64s %s %s\n", st, $3, $4, (st == "PASS" ? "" : substr(why[$3], 1, 160))
				next
			}
			/^(ok|FAIL|PASS)$/ || /^(ok|FAIL) / { print "    " $0 }
		' "$logs/$bin.log"
		grep -h "libraries:" "$logs/$bin.log" | head -1 | sed 's/^ */    /'
	done
	echo "## benchmark (Mistral-7B-shaped layers, bf16 frozen weights)"
	(cd gpu && "$root/$out/gpu.test" -test.run '^$' -test.bench BenchmarkMistralLayers -test.benchtime 5x -test.timeout 300s) \
		>"$logs/bench.log" 2>&1 || fail=1
	grep -E "^Benchmark|FAIL|panic|Error|error" "$logs/bench.log" | sed 's/^/    /'
	export KRONFED_CACHE=$PWD/$out/cache
	for cmd in client simulate; do
		gunzip -c "$out/$cmd.gz" >"$out/$cmd" && chmod +x "$out/$cmd" || fail=1
	done
	# --layers: $KRONFED_BENCH_LAYERS (default 32, the whole Mistral-7B: 29 GB
	# of host memory to build it, 14 GB of bf16 on the device). The script
	# runs `client bench train --device cuda --shape mistral-7b` (kronfed's
	# Kron-LoRA and LoRA-8) and then PEFT's LoKr and LoRA-8 in PyTorch.
	echo "## Mistral-7B training step, micro-batch 8 x 512: kronfed beside PEFT (bench/peft_step.py)"
	python3 bench/peft_step.py --client "$out/client" --layers "${KRONFED_BENCH_LAYERS:-32}" >"$logs/peft-step.log" 2>&1 || fail=1
	sed 's/^/    /' "$logs/peft-step.log" | tail -14
	echo "## client bench train --device cuda --shape distilbert (the CPU table's shape)"
	"$out/client" bench train --device cuda --steps 5 --precision fp32,bf16 >"$logs/bench-distilbert.log" 2>&1 || fail=1
	sed 's/^/    /' "$logs/bench-distilbert.log" | tail -8
	# A federated run with GPU clients against the same run on the CPU: fp32
	# frozen weights and the CPU's dropout masks reproduce the CPU's table
	# within float rounding; bf16 (the GPU's default) within its tolerance.
	sim=(run --task add-mod-10 --clients 8 --rounds 3 --seed 1)
	for v in "cpu:--device cpu" "cuda-fp32:--device cuda --precision fp32 --host-dropout" "cuda-bf16:--device cuda"; do
		name=${v%%:*}
		echo "## simulate ${sim[*]} ${v#*:}"
		start=$(date +%s)
		# shellcheck disable=SC2086
		"$out/simulate" "${sim[@]}" ${v#*:} --out "$out/sim-$name" >"$logs/sim-$name.log" 2>&1 || fail=1
		tail -8 "$logs/sim-$name.log" | sed 's/^/    /'
		echo "    wall $(($(date +%s) - start)) s"
	done
	[ $fail = 0 ] && echo "devcheck: PASS" || echo "devcheck: FAIL (logs in $logs)"
	return $fail
}

case "${1:-}" in
build) build ;;
run) run ;;
*) echo "usage: bash gpu/devcheck.sh build|run" >&2; exit 2 ;;
esac
