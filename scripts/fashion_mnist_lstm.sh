#!/usr/bin/env bash
# The README's recurrent result: --model lstm128 on Fashion-MNIST (each image's 28 rows are
# the time steps) at -n 2, 1 and 4, then the MLP's epoch time beside it, and one picture.
# Usage: scripts/fashion_mnist_lstm.sh [OUTDIR]   (needs: apt-get install dataset-fashion-mnist)
set -euo pipefail
out=${1:-fashion-mnist-lstm-runs}
mkdir -p "$out"
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
flags=(--dataset fashion-mnist --model lstm128 --epochs 8 --optimizer adamw --lr 0.002
       --weight-decay 0.01 --warmup-epochs 0.5 --clip-grad-norm 1)
report() {
    python - "$1" "$2" <<'PY'
import json, statistics, sys
records = [json.loads(line) for line in open(sys.argv[1])]
epochs = [r for r in records if r["event"] == "epoch"]
print(f"{sys.argv[2]}: test accuracy {records[-1]['test_accuracy']:.4f}, median epoch "
      f"{statistics.median(r['epoch_time'] for r in epochs):.1f} s, gradient norm mean "
      f"{statistics.mean(r.get('grad_norm_mean', float('nan')) for r in epochs):.2f}")
PY
}
for n in 2 1 4; do
    mpirun -n "$n" python -m distbp.train "${flags[@]}" --metrics "$out/n$n.jsonl" > "$out/n$n.log"
    report "$out/n$n.jsonl" "lstm128 -n $n"
done
mpirun -n 2 python -m distbp.train --dataset fashion-mnist --hidden 512,256 --epochs 2 \
    --optimizer adamw --lr 0.001 --metrics "$out/mlp.jsonl" > "$out/mlp.log"
report "$out/mlp.jsonl" "MLP 512,256 -n 2"
python -m distbp.plot "$out/n1.jsonl" "$out/n2.jsonl" "$out/n4.jsonl" --labels "-n 1,-n 2,-n 4" \
    --title "Fashion-MNIST, LSTM 128 over the image rows, AdamW" -o "$out/curves.png"
