#!/usr/bin/env bash
# Time from `make run` on a fresh clone to the first page served, and to both model servers answering.
# The clone gets a new virtualenv; pip's download cache and the llama.cpp wheel built once by `make`
# (~/.cache/open-arena) are reused, as they would be on a developer's machine after the first install.
# Usage: bash bench/fresh_start.sh [PORT]
set -euo pipefail
port="${1:-8765}"
models_port="${MODELS_PORT:-8771}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/arena-fresh-XXXX)"
git clone -q "$repo" "$work/arena"
cd "$work/arena"
env -u DATABASE_URL -u REDIS_URL PORT="$port" LLAMACPP_BASE_PORT="$models_port" setsid make run >"$work/run.log" 2>&1 &
runner=$!
started=$(date +%s.%N)
cleanup() { kill -INT -- "-$runner" 2>/dev/null || true; sleep 8; kill -- "-$runner" 2>/dev/null || true; }
trap cleanup EXIT
until curl -sf -o /dev/null "http://127.0.0.1:$port/"; do
  if ! kill -0 "$runner" 2>/dev/null; then echo "make run exited early; see $work/run.log"; exit 1; fi
  sleep 0.5
done
first_page=$(date +%s.%N)
until curl -sf -o /dev/null "http://127.0.0.1:$models_port/v1/models" && \
      curl -sf -o /dev/null "http://127.0.0.1:$((models_port + 1))/v1/models"; do sleep 0.5; done
models_ready=$(date +%s.%N)
printf 'make run on a fresh clone -> first page served: %.1f s\n' "$(echo "$first_page - $started" | bc)"
printf 'make run on a fresh clone -> both model servers ready: %.1f s\n' "$(echo "$models_ready - $started" | bc)"
