#!/usr/bin/env bash
# On a machine with an NVIDIA (CUDA) GPU: check voicebox's remote backend against a real vLLM-Omni.
#
#   1. creates a virtual environment with the pinned vLLM-Omni (and the vLLM release it is built on),
#   2. builds voicebox's full-size random-weight Qwen3-TTS 0.6B Base checkpoint (the bench one,
#      bench/tts_bench_setup.py -> tests/support/qwen_checkpoint.py; reused when already built),
#   3. starts `vllm serve CHECKPOINT --omni` on it (loopback only) and waits for /health,
#   4. runs tests/test_remote_live.py with VOICEBOX_REMOTE_TEST_URL pointing at it,
#   5. runs bench/remote_speed.py (1, 4, 16, 64 concurrent requests),
#   6. writes bench/results/remote_speed_<label>.json and bench/results/remote_gpu_check_<label>.json,
#      and stops the server.
# Exits 2 at once, with a message, on a machine without a CUDA GPU.
#
# Usage: bash scripts/vllm_omni_gpu_check.sh
# Settings (environment): VLLM_OMNI_GPU (index, default 0), VLLM_OMNI_PORT (8091),
#   VLLM_OMNI_VENV (default ~/.cache/voicebox/vllm-omni-<version>), VOICEBOX_PYTHON (.venv/bin/python,
#   made with requirements-dev.txt when missing), BENCH_CONCURRENCY ("1 4 16 64"),
#   BENCH_MAX_NEW_TOKENS (64 frames, about 5 s of audio a request; random weights always run to it),
#   VLLM_OMNI_START_TIMEOUT (1800 s), VOICEBOX_REMOTE_API_KEY (optional key for the server).
set -euo pipefail

VLLM_OMNI_VERSION=0.30.0 # docs/remote-protocol.md: the version voicebox/remote is written against
VLLM_VERSION=0.30.0      # vLLM-Omni 0.30.0's install instructions use vLLM 0.30.0

say() { printf 'vllm_omni_gpu_check: %s\n' "$*" >&2; }
die() {
  say "error: $1"
  exit "${2:-1}"
}

# --- 0. a CUDA GPU, before anything is installed (no external command is needed to get here)
if ! command -v nvidia-smi >/dev/null 2>&1; then
  die "no CUDA GPU: nvidia-smi is not on PATH. Run this on a machine with an NVIDIA GPU and its driver." 2
fi
if ! GPU_LIST=$(nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv,noheader 2>&1) \
  || [ -z "$GPU_LIST" ]; then
  die "no CUDA GPU: nvidia-smi found none (${GPU_LIST:-no output})" 2
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
GPU=${VLLM_OMNI_GPU:-0}
PORT=${VLLM_OMNI_PORT:-8091}
VENV=${VLLM_OMNI_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/voicebox/vllm-omni-$VLLM_OMNI_VERSION}
VOICEBOX_PY=${VOICEBOX_PYTHON:-$ROOT/.venv/bin/python}
CONCURRENCY=${BENCH_CONCURRENCY:-1 4 16 64}
MAX_NEW_TOKENS=${BENCH_MAX_NEW_TOKENS:-64}
START_TIMEOUT=${VLLM_OMNI_START_TIMEOUT:-1800}
URL="http://127.0.0.1:$PORT"

GPU_LINE=$(printf '%s\n' "$GPU_LIST" | awk -F', ' -v g="$GPU" '$1 == g')
[ -n "$GPU_LINE" ] || die "no GPU with index $GPU; nvidia-smi lists: $GPU_LIST" 2
GPU_NAME=$(printf '%s' "$GPU_LINE" | cut -d, -f2 | sed 's/^ *//')
GPU_SLUG=$(printf '%s' "$GPU_NAME" | tr '[:upper:]' '[:lower:]' | sed -e 's/nvidia//' -e 's/[^a-z0-9]\{1,\}/-/g' -e 's/^-//' -e 's/-$//')
LABEL=${BENCH_LABEL:-${GPU_SLUG}_vllm-omni-${VLLM_OMNI_VERSION}_0.6B-random}
say "GPU $GPU_LINE; results labelled $LABEL"

# --- 1. vLLM-Omni in its own environment (it pins transformers 5.13-5.14; voicebox uses 5.16)
if ! "$VENV/bin/python" -c "import vllm_omni, sys; sys.exit(vllm_omni.__version__ != '$VLLM_OMNI_VERSION')" 2>/dev/null; then
  say "installing vllm==$VLLM_VERSION and vllm-omni==$VLLM_OMNI_VERSION into $VENV"
  mkdir -p "$(dirname "$VENV")"
  if command -v uv >/dev/null 2>&1; then # the way vLLM-Omni's install guide does it
    uv venv --python 3.12 --seed "$VENV"
    uv pip install --python "$VENV/bin/python" "vllm==$VLLM_VERSION" --torch-backend=auto
    uv pip install --python "$VENV/bin/python" "vllm-omni==$VLLM_OMNI_VERSION"
  else
    PY_FOR_VENV=$(command -v python3.12 || command -v python3) || die "no python3 to make $VENV"
    "$PY_FOR_VENV" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install "vllm==$VLLM_VERSION" "vllm-omni==$VLLM_OMNI_VERSION"
  fi
fi
VERSIONS=$("$VENV/bin/python" -c "import vllm, vllm_omni; print(vllm.__version__, vllm_omni.__version__)" 2>/dev/null) \
  || die "vllm / vllm_omni do not import from $VENV"
say "vllm, vllm-omni: $VERSIONS"

# --- 2. voicebox's environment and the full-size random-weight 0.6B Base checkpoint
if [ ! -x "$VOICEBOX_PY" ]; then
  say "making voicebox's .venv (requirements-dev.txt)"
  python3 -m venv "$ROOT/.venv"
  "$ROOT/.venv/bin/python" -m pip install -q -r requirements-dev.txt
  VOICEBOX_PY=$ROOT/.venv/bin/python
fi
CHECKPOINT=$("$VOICEBOX_PY" -c 'import sys; sys.path.insert(0, "bench"); import tts_bench_setup as s; print(s.checkpoint("0.6B"))' | tail -n 1)
[ -f "$CHECKPOINT/config.json" ] || die "the checkpoint was not built ($CHECKPOINT)"

# --- 3. the server, loopback only, on the bundled Qwen3-TTS deploy config (min_tokens 2, 64 seqs a stage)
DEPLOY=$("$VENV/bin/python" -c "import os, vllm_omni; print(os.path.join(os.path.dirname(vllm_omni.__file__), 'deploy', 'qwen3_tts.yaml'))")
LOG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vllm-omni-check.XXXXXX")
SERVER_LOG=$LOG_DIR/server.log
SERVE=("$VENV/bin/vllm" serve "$CHECKPOINT" --omni --deploy-config "$DEPLOY" --host 127.0.0.1 --port "$PORT"
  --trust-remote-code)
say "starting: CUDA_VISIBLE_DEVICES=$GPU ${SERVE[*]} (log: $SERVER_LOG)"
export VLLM_API_KEY=${VOICEBOX_REMOTE_API_KEY:-}
CUDA_VISIBLE_DEVICES=$GPU setsid "${SERVE[@]}" >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
# shellcheck disable=SC2329 # run by the EXIT trap
stop_server() {
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    say "stopping the server (process group $SERVER_PID)"
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
  fi
}
trap stop_server EXIT

health() { "$VOICEBOX_PY" -c "import sys, urllib.request as u; sys.exit(u.urlopen('$URL/health', timeout=5).status != 200)" 2>/dev/null; }
waited=0
until health; do
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -n 60 "$SERVER_LOG" >&2; die "the server exited before it was healthy"; }
  [ "$waited" -lt "$START_TIMEOUT" ] || { tail -n 60 "$SERVER_LOG" >&2; die "no healthy server after ${START_TIMEOUT}s"; }
  sleep 5
  waited=$((waited + 5))
done
say "healthy after ${waited}s"

# --- 4. voicebox's remote-backend tests against the live server
status=0
tests_rc=0
VOICEBOX_REMOTE_TEST_URL=$URL "$VOICEBOX_PY" -m pytest tests/test_remote_live.py -v -p no:cacheprovider \
  --junitxml "$LOG_DIR/remote_live.xml" || tests_rc=$?
[ "$tests_rc" -eq 0 ] || { say "tests/test_remote_live.py failed ($tests_rc)"; status=1; }

# --- 5. the throughput bench
bench_rc=0
# shellcheck disable=SC2086 # CONCURRENCY is a list of numbers
"$VOICEBOX_PY" bench/remote_speed.py --url "$URL" --label "$LABEL" --concurrency $CONCURRENCY \
  --max-new-tokens "$MAX_NEW_TOKENS" --fact "gpu=$GPU_LINE" --fact "vllm=${VERSIONS% *}" \
  --fact "vllm_omni=${VERSIONS#* }" --fact "checkpoint=random-weight 0.6B Base (tests/support/qwen_checkpoint.py)" \
  --fact "serve=vllm serve <checkpoint> --omni --deploy-config <vllm_omni>/deploy/qwen3_tts.yaml --trust-remote-code" \
  || bench_rc=$?
[ "$bench_rc" -eq 0 ] || { say "bench/remote_speed.py reported errors ($bench_rc)"; status=1; }

# --- 6. a record of this run beside the bench's own file
"$VOICEBOX_PY" - "$LOG_DIR/remote_live.xml" "bench/results/remote_gpu_check_$LABEL.json" "$tests_rc" "$bench_rc" \
  "$GPU_LINE" "$VERSIONS" "$LABEL" "$waited" <<'PY'
import json, sys, xml.etree.ElementTree as ET
from datetime import datetime, timezone
junit, out, tests_rc, bench_rc, gpu, versions, label, waited = sys.argv[1:]
try:
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
except (OSError, ET.ParseError, AttributeError):
    counts = None
vllm, omni = versions.split()
json.dump({"check": "vllm_omni_gpu_check", "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "gpu": gpu, "vllm": vllm, "vllm_omni": omni, "server_start_s": int(waited),
           "remote_live_tests": {"exit_code": int(tests_rc), "counts": counts},
           "bench": {"exit_code": int(bench_rc), "results": f"bench/results/remote_speed_{label}.json"}},
          open(out, "w"), indent=1)
print(f"wrote {out}")
PY
exit "$status"
