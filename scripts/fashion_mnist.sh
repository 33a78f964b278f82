#!/usr/bin/env bash
# The README's Fashion-MNIST result: the same flags at -n 2, 1 and 4, wall time and peak
# RSS per rank from the metrics summary, then one picture with the three curves.
# Usage: scripts/fashion_mnist.sh [OUTDIR]   (needs: apt-get install dataset-fashion-mnist)
set -euo pipefail
out=${1:-fashion-mnist-runs}
mkdir -p "$out"
flags=(--dataset fashion-mnist --hidden 512,256 --epochs 30 --optimizer adamw --lr 0.001
       --weight-decay 0.05 --warmup-epochs 1)
for n in 2 1 4; do
    start=$(date +%s.%N)
    mpirun -n "$n" python -m distbp.train "${flags[@]}" --metrics "$out/n$n.jsonl" \
        > "$out/n$n.log"
    end=$(date +%s.%N)
    python - "$out/n$n.jsonl" "$n" "$start" "$end" <<'PY'
import json, sys
summary = json.loads(open(sys.argv[1]).read().splitlines()[-1])
print(f"-n {sys.argv[2]}: test accuracy {summary['test_accuracy']:.4f}, wall "
      f"{float(sys.argv[4]) - float(sys.argv[3]):.1f} s (training {summary['wall_time']:.1f} s), "
      f"peak RSS per rank {summary['peak_rss_mb']} MB")
PY
done
python -m distbp.plot "$out/n1.jsonl" "$out/n2.jsonl" "$out/n4.jsonl" --labels "-n 1,-n 2,-n 4" \
    --title "Fashion-MNIST, MLP 784-512-256-10, AdamW" -o "$out/curves.png"
