#!/usr/bin/env bash
# `make bench`: the benchmarks, written to tests/bench/out/benchmarks.md (ignored by git), or to
# docs/benchmarks.md with UPDATE_DOCS=1 (for a run on an idle machine, to be committed).
#
# 1. wallet-api: creates a scratch database on DATABASE_URL's server (default: the local one), runs
#    tests/bench/wallet_bench.py against it (pgbench baselines, wallet throughput, latency, rebuild)
#    and drops the database; then rate-limit admissions with and without the WAL flush, and the
#    internal HTTP reserve through a wallet-api process on a scratch database and RabbitMQ vhost of
#    its own (AMQP_URL's server). About 35 s + 31 x BENCH_SECONDS.
# 2. billing-webhook: tests/bench/billing_bench.py makes its own scratch database and RabbitMQ vhost
#    (AMQP_URL's server, management API or rabbitmqctl), runs wallet-api and billing-webhook as
#    processes and measures signed deliveries to wallet credits; it drops both when done. About
#    20 s + 10 x BENCH_SECONDS (2 minutes at the default), more if the pipeline is slow to drain.
# 3. execution-proxy: tests/bench/execution_bench.py runs a fake OpenAI, LiteLLM's proxy (installed on
#    first use into tests/bench/out/litellm-venv by tests/bench/litellm/setup.sh, about a minute) and, once
#    the service serves, wallet-api and execution-proxy on a scratch database and vhost; it measures
#    the added latency of each path, 3 times in alternating order. About 40 s + 12 x BENCH_SECONDS
#    with direct and LiteLLM only (3 minutes at the default), up to 40 s + 36 x BENCH_SECONDS with
#    the service's four routes.
# 4. wake-ups: tests/bench/wakeup_bench.py makes its own scratch database and measures append-to-follower
#    latency with the writer in another process, steady and in bursts, with the old NOTIFY trigger
#    as the baseline in the same run. About 10 s + 4 x BENCH_SECONDS.
# 5. live run events: tests/bench/sse_bench.py starts a PostgreSQL cluster of its own and, per phase,
#    platform-api (push: one listener per process) or the former design (a poll per client every
#    2 s) as a process, connects 1, 100 and BENCH_SSE_CLIENTS (5,000) SSE clients and measures
#    append-to-client latency, memory per client and CPU. About 90 s + 6 x BENCH_SECONDS.
# The report is the wallet report followed by the billing, execution, wake-up and SSE sections (each between its
# markers), and is replaced only if every part that ran completed.
#
# BENCH_SECONDS (default 10) sets the length of each measured phase; each part is killed if it takes
# more than twice its estimate. BENCH_ONLY=wallet, billing, execution, wakeup or sse runs one part and keeps the
# others' sections of the existing report (the one it replaces, else docs/benchmarks.md) as they are.
set -euo pipefail
cd "$(dirname "$0")/../.."

DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
BENCH_SECONDS="${BENCH_SECONDS:-10}"
BENCH_ONLY="${BENCH_ONLY:-}"
UPDATE_DOCS="${UPDATE_DOCS:-}"
ENV_MODE="${ENV_MODE:-development}" # the services it starts use dev secrets
export DATABASE_URL AMQP_URL BENCH_SECONDS ENV_MODE

case "$BENCH_ONLY" in
    "" | wallet | billing | execution | wakeup | sse) ;;
    *) echo "bench: BENCH_ONLY is wallet, billing, execution, wakeup, sse or empty (all), not '$BENCH_ONLY'" >&2; exit 2 ;;
esac
for tool in psql pgbench uv; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is not on PATH" >&2; exit 1; }
done
host_of() { printf '%s' "$1" | sed -E 's#^[a-z]+://([^@/]*@)?(\[[^]]*\]|[^:/?]*).*#\2#'; }
for url in "$DATABASE_URL" "$AMQP_URL"; do
    host="$(host_of "$url")"
    case "$host" in
        127.0.0.1 | localhost | "[::1]" | "") ;;
        *) [ -n "${BENCH_ALLOW_REMOTE:-}" ] || { echo "bench: refusing non-local server '$host'" >&2; exit 1; } ;;
    esac
done

case "$UPDATE_DOCS" in
    "" | 0) out=tests/bench/out/benchmarks.md ;;
    1) out=docs/benchmarks.md ;;
    *) echo "bench: UPDATE_DOCS is 1 or empty, not '$UPDATE_DOCS'" >&2; exit 2 ;;
esac
previous=docs/benchmarks.md # where BENCH_ONLY finds the part it does not run
[ -f "$out" ] && previous="$out"

name="bench_$(date +%Y%m%d_%H%M%S)_$$"
bench_url="$(printf '%s' "$DATABASE_URL" | sed -E "s#^([a-z]+://[^/?]*)(/[^?]*)?#\1/$name#")"
report="$(mktemp)"
billing="$(mktemp)"
execution="$(mktemp)"
wakeup="$(mktemp)"
sse="$(mktemp)"
composed="$(mktemp)"
created=""

cleanup() {
    if [ -n "$created" ]; then
        psql "$DATABASE_URL" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null \
            || echo "bench: could not drop database $name" >&2
    fi
    rm -f "$report" "$billing" "$execution" "$wakeup" "$sse" "$composed"
}
trap cleanup EXIT

begin='<!-- billing-bench:begin'
end='<!-- billing-bench:end -->'
exec_begin='<!-- execution-bench:begin'
exec_end='<!-- execution-bench:end -->'
wake_begin='<!-- wakeup-bench:begin'
wake_end='<!-- wakeup-bench:end -->'
sse_begin='<!-- sse-bench:begin'
sse_end='<!-- sse-bench:end -->'
existing_billing() { # the billing section of the previous report, markers included
    [ -f "$previous" ] && sed -n "/^$begin/,/^$end/p" "$previous" || true
}
existing_execution() { # the execution section of the previous report, markers included
    [ -f "$previous" ] && sed -n "/^$exec_begin/,/^$exec_end/p" "$previous" || true
}
existing_wakeup() { # the wake-up section of the previous report, markers included
    [ -f "$previous" ] && sed -n "/^$wake_begin/,/^$wake_end/p" "$previous" || true
}
existing_sse() { # the SSE section of the previous report, markers included
    [ -f "$previous" ] && sed -n "/^$sse_begin/,/^$sse_end/p" "$previous" || true
}
existing_wallet() { # everything else
    [ -f "$previous" ] && sed -e "/^$begin/,/^$end/d" -e "/^$exec_begin/,/^$exec_end/d" \
        -e "/^$wake_begin/,/^$wake_end/d" -e "/^$sse_begin/,/^$sse_end/d" "$previous" || true
}

if [ -z "$BENCH_ONLY" ] || [ "$BENCH_ONLY" = wallet ]; then
    psql "$DATABASE_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$name\"" >/dev/null
    created=1
    echo "bench: wallet, database $name, BENCH_SECONDS=$BENCH_SECONDS" >&2
    limit=$(( 2 * (40 + 31 * BENCH_SECONDS) ))
    timeout --signal=INT --kill-after=30 "$limit" \
        uv run python tests/bench/wallet_bench.py --database-url "$bench_url" --out "$report"
else
    existing_wallet > "$report"
fi

if [ -z "$BENCH_ONLY" ] || [ "$BENCH_ONLY" = billing ]; then
    echo "bench: billing, BENCH_SECONDS=$BENCH_SECONDS" >&2
    limit=$(( 2 * (60 + 15 * BENCH_SECONDS) ))
    timeout --signal=INT --kill-after=30 "$limit" \
        uv run python tests/bench/billing_bench.py --out "$billing"
else
    existing_billing > "$billing"
fi

if [ -z "$BENCH_ONLY" ] || [ "$BENCH_ONLY" = execution ]; then
    echo "bench: execution, BENCH_SECONDS=$BENCH_SECONDS" >&2
    limit=$(( 2 * (60 + 36 * BENCH_SECONDS) ))
    timeout --signal=INT --kill-after=30 "$limit" \
        uv run python tests/bench/execution_bench.py --out "$execution"
else
    existing_execution > "$execution"
fi

if [ -z "$BENCH_ONLY" ] || [ "$BENCH_ONLY" = wakeup ]; then
    echo "bench: wakeup, BENCH_SECONDS=$BENCH_SECONDS" >&2
    limit=$(( 2 * (30 + 4 * BENCH_SECONDS) + 240 )) # + each phase's wait for its follower
    timeout --signal=INT --kill-after=30 "$limit" \
        uv run python tests/bench/wakeup_bench.py --out "$wakeup"
else
    existing_wakeup > "$wakeup"
fi

if [ -z "$BENCH_ONLY" ] || [ "$BENCH_ONLY" = sse ]; then
    echo "bench: sse, BENCH_SECONDS=$BENCH_SECONDS" >&2
    limit=$(( 2 * (90 + 6 * BENCH_SECONDS) + 120 )) # + connecting 5,000 clients twice
    timeout --signal=INT --kill-after=30 "$limit" \
        uv run python tests/bench/sse_bench.py --out "$sse"
else
    existing_sse > "$sse"
fi

mkdir -p "$(dirname "$out")"
{
    sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' "$report" # the wallet report without trailing blank lines
    for section in "$billing" "$execution" "$wakeup" "$sse"; do
        if [ -s "$section" ]; then
            echo
            cat "$section"
        fi
    done
} > "$composed"
cat "$composed" > "$out" # a new file gets the usual mode, not mktemp's
echo "bench: wrote $out" >&2
