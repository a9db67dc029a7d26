#!/usr/bin/env bash
# `make bench`: the wallet-api benchmarks, written to docs/benchmarks.md.
#
# Creates a scratch database on DATABASE_URL's server (default: the local one), runs
# tests/bench/wallet_bench.py against it (pgbench baselines, wallet throughput, latency, rebuild),
# drops the database, and replaces docs/benchmarks.md only if the run completed.
# BENCH_SECONDS (default 10) sets the length of each measured phase; the whole run takes about
# 25 s + 28 x BENCH_SECONDS and is killed if it takes more than twice that.
set -euo pipefail
cd "$(dirname "$0")/../.."

DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
BENCH_SECONDS="${BENCH_SECONDS:-10}"
export BENCH_SECONDS

for tool in psql pgbench uv; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is not on PATH" >&2; exit 1; }
done
host="$(printf '%s' "$DATABASE_URL" | sed -E 's#^[a-z]+://([^@/]*@)?(\[[^]]*\]|[^:/?]*).*#\2#')"
case "$host" in
    127.0.0.1 | localhost | "[::1]" | "") ;;
    *) [ -n "${BENCH_ALLOW_REMOTE:-}" ] || { echo "bench: refusing non-local server '$host'" >&2; exit 1; } ;;
esac

name="bench_$(date +%Y%m%d_%H%M%S)_$$"
bench_url="$(printf '%s' "$DATABASE_URL" | sed -E "s#^([a-z]+://[^/?]*)(/[^?]*)?#\1/$name#")"
report="$(mktemp)"

cleanup() {
    psql "$DATABASE_URL" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null \
        || echo "bench: could not drop database $name" >&2
    rm -f "$report"
}
psql "$DATABASE_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$name\"" >/dev/null
trap cleanup EXIT
echo "bench: database $name, BENCH_SECONDS=$BENCH_SECONDS" >&2

limit=$(( 2 * (30 + 28 * BENCH_SECONDS) ))
timeout --signal=INT --kill-after=30 "$limit" \
    uv run python tests/bench/wallet_bench.py --database-url "$bench_url" --out "$report"

mkdir -p docs
cp "$report" docs/benchmarks.md
echo "bench: wrote docs/benchmarks.md" >&2
