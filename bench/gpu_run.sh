#!/usr/bin/env bash
# The GPU benchmarks and CUDA code-path checks, as one command for a lent GPU machine that
# reaches no package registry (docs/install.md, "On a GPU machine"). Beside the checkout, in
# .whl/: this project's wheels (`uv build --all-packages --wheel -o .whl`), the few packages
# the machine's image lacks (cattrs, msgspec, python-dotenv, efficientnet-pytorch,
# megadetector==10.0.28, jsonpickle) as cp312 wheels, and a copy of md-test-images.
#   bash bench/gpu_run.sh classify   # CUDA paths, then bench_classify --gpu
#   bash bench/gpu_run.sh train      # bench_train_peer --gpu
set -uo pipefail
export PYTHONUNBUFFERED=1 COLUMNS=200
OUT=${OUT:-bench/out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site PATH=/tmp/site/bin:$PATH
export CAMTRAP_BENCH_MD_PYTHON=$(command -v python3) CAMTRAP_MD_TEST_IMAGES=$PWD/.whl/md-test-images
# crop_detections imports azure.storage.blob, which the benchmarks never use
(cd bench && python3 -c "import megadetector_env as m; m.md_python()") || exit 1
export PYTHONPATH=/tmp/site:$PWD/bench/.venvs/megadetector-stubs
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm --format=csv | tee "$OUT/nvidia-smi.txt"
python3 -c "import torch, timm, typer, ct_infer.cli, ct_train.cli, megadetector.classification.run_classifier; print('torch', torch.__version__, 'timm', timm.__version__, 'typer', typer.__version__)" || exit 1
status=0
case "${1:-classify}" in
  classify)
    timeout 240 python3 bench/gpu_paths.py 2>&1 | tee "$OUT/gpu_paths.log" || status=1
    timeout 330 python3 bench/bench_classify.py --gpu --crops "${CROPS:-10000}" 2>&1 | tee "$OUT/classify_gpu.log" || status=1
    ;;
  train)
    timeout 330 python3 bench/bench_train_peer.py --gpu --crops 2000 --epochs 2 --models resnet18 efficientnet-b0 2>&1 | tee "$OUT/train_peer_gpu.log" || status=1
    ;;
esac
cp bench/out/results/*gpu*.json "$OUT/" 2>/dev/null
exit $status
