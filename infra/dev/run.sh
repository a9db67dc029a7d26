#!/usr/bin/env bash
# `make dev`: the whole system without Docker, against a local PostgreSQL and RabbitMQ.
# `infra/dev/run.sh migrate` (`make migrate`): only the database and each service's migrations.
#
# - makes sure the database exists on DATABASE_URL's server (idempotent);
# - provisions the broker (python -m lf_messaging.provision dev): one user per service, allowed to
#   publish only its own context's routing keys, and the topology of infra/rabbitmq/definitions.json
#   (exchanges, the consumers' queues), so that nothing published before a consumer's first start is
#   dropped; each service then logs in as its own user;
# - starts every service that exists in this checkout as a local process, each output line
#   prefixed with its name (each `serve` applies its own migrations first);
# - with billing-webhook, starts the fake LemonSqueezy (lf_testing.fakes.lemonsqueezy) on :8790
#   and points billing-webhook at it, unless LEMONSQUEEZY_API_URL is set: checkouts work without
#   a LemonSqueezy account;
# - with platform-api, starts the fake Chainabit (lf_testing.fakes.chainabit) on :8795 and points
#   platform-api's partners at it, unless CHAINABIT_API_URL is set;
# - points execution-proxy at the dev wallet-api; with no provider key set only its built-in
#   `local` provider (and ollama) serve on credits, streaming at LOCAL_TOKEN_DELAY_MS (default 15);
# - renders the gateway config into a temporary directory and runs nginx on :8786;
# - on Ctrl-C or SIGTERM stops everything (SIGTERM to each process, so services shut down
#   gracefully), and stops everything too as soon as one of them exits;
# - owns its processes: they all stay in make dev's process group (no `set -m`), so a signal to the
#   group, even SIGKILL (a harness's `timeout -s KILL`, the OOM killer), reaches every one; and each
#   dies with this script (PR_SET_PDEATHSIG, through util-linux `setpriv`), this script with make.
# - checks its ports first: one taken is one line naming the port and, where `ss` can tell, the
#   process holding it.
#
# Environment (all optional; every variable is passed on to the services):
#   DATABASE_URL   any database on the server to use; the services get the same server with
#                  database DEV_DATABASE        (default postgresql://postgres@127.0.0.1:5432/postgres)
#   DEV_DATABASE   the platform's database name (default lenserfight)
#   DEV_DB_ROLES   1 (default): each service serves as its runtime role (DB_ROLE) and migrates as
#                  its owner role (DB_OWNER_ROLE=<role>_owner), both created if missing, which
#                  needs a superuser or CREATEROLE login; 0: use the login as is
#   AMQP_URL       RabbitMQ                     (default amqp://guest:guest@127.0.0.1:5672/)
#   LEMONSQUEEZY_API_URL  a LemonSqueezy API for billing-webhook (with LEMONSQUEEZY_API_KEY and
#                  LEMONSQUEEZY_STORE_ID); unset: the fake on 127.0.0.1:$LEMONSQUEEZY_PORT
#   CHAINABIT_API_URL  Chainabit for platform-api's partners (with CHAINABIT_PARTNER_API_KEY);
#                  unset: the fake on 127.0.0.1:$CHAINABIT_PORT
#   Ports, to run two copies side by side (with another DEV_DATABASE and AMQP_URL vhost):
#   GATEWAY_PORT (8786), WALLET_API_PORT (8101), EXECUTION_PROXY_PORT (8102),
#   BILLING_WEBHOOK_PORT (8103), LIGHTNING_JOBS_PORT (8104), PLATFORM_API_PORT (8787),
#   LEMONSQUEEZY_PORT (8790, the fake), CHAINABIT_PORT (8795, the fake)
set -euo pipefail

# Die with make: if whatever started us goes away (even by SIGKILL), we get SIGTERM and stop the rest.
if [[ -z "${LF_DEV_SUPERVISED:-}" ]] && command -v setpriv >/dev/null 2>&1; then
    export LF_DEV_SUPERVISED=1
    exec setpriv --pdeathsig TERM -- bash "${BASH_SOURCE[0]}" "$@"
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

# name | port (its variable and default) | database role | python package (`python -m <package>
# serve|migrate`). A service runs once services/<name>/ exists.
SERVICES=(
    "wallet-api|WALLET_API_PORT:8101|wallet_api|wallet_api"
    "execution-proxy|EXECUTION_PROXY_PORT:8102|execution_proxy|execution_proxy"
    "billing-webhook|BILLING_WEBHOOK_PORT:8103|billing_webhook|billing_webhook"
    "lightning-jobs|LIGHTNING_JOBS_PORT:8104|lightning_jobs|lightning_jobs"
    "platform-api|PLATFORM_API_PORT:8787|platform_api|platform_api"
)
GATEWAY_PORT="${GATEWAY_PORT:-8786}"
LEMONSQUEEZY_PORT="${LEMONSQUEEZY_PORT:-8790}"
CHAINABIT_PORT="${CHAINABIT_PORT:-8795}"

action="${1:-serve}"
[[ "$action" == serve || "$action" == migrate ]] || { echo "usage: $0 [serve|migrate]" >&2; exit 2; }

export DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
# make dev is development: dev secrets and defaults work (services refuse them in production).
export ENV_MODE="${ENV_MODE:-development}"
DEV_DATABASE="${DEV_DATABASE:-lenserfight}"
DEV_DB_ROLES="${DEV_DB_ROLES:-1}"
broker_users=0

say() { printf '%-17s %s\n' "[dev]" "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- the database ----------------------------------------------------------------------------

# scheme://user:password@host:port  /database  ?query
[[ "$DATABASE_URL" =~ ^(postgres(ql)?://[^/?]*)(/[^?]*)?(\?.*)?$ ]] \
    || die "DATABASE_URL is not a postgresql:// URL"
server="${BASH_REMATCH[1]}"
query="${BASH_REMATCH[4]}"
admin_url="${server}/postgres${query}"
service_url="${server}/${DEV_DATABASE}${query}"

[[ "$DEV_DATABASE" =~ ^[a-z_][a-z0-9_]*$ ]] || die "DEV_DATABASE must be a plain lower-case name"

ensure_database() {
    if command -v psql >/dev/null 2>&1; then
        local exists
        exists="$(psql "$admin_url" -XtAc "SELECT 1 FROM pg_database WHERE datname = '$DEV_DATABASE'")" \
            || die "cannot reach PostgreSQL at ${server#*@} (is it running?)"
        if [[ "$exists" != 1 ]]; then
            psql "$admin_url" -Xqc "CREATE DATABASE \"$DEV_DATABASE\"" || die "cannot create $DEV_DATABASE"
            say "created database $DEV_DATABASE"
        fi
    else  # no client tools: the workspace's asyncpg does it
        uv run --no-sync python - "$admin_url" "$DEV_DATABASE" <<'PY' || die "cannot reach PostgreSQL or create the database"
import asyncio, sys
import asyncpg

async def main(url: str, name: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        if not await conn.fetchval("SELECT true FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
            print(f"[dev]              created database {name}", file=sys.stderr)
    finally:
        await conn.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
PY
    fi
}

# --- the broker ------------------------------------------------------------------------------

# --- processes -------------------------------------------------------------------------------

declare -A PIDS=()   # each process we started, by name
workdir=""
# Each child gets SIGKILL when this script dies, however it dies.
DIE_WITH_US=()
command -v setpriv >/dev/null 2>&1 && DIE_WITH_US=(setpriv --pdeathsig KILL --)

port_of() {  # port_of VARIABLE:DEFAULT -> the port (the variable's value, else the default)
    local variable="${1%%:*}"
    printf '%s' "${!variable:-${1#*:}}"
}

port_holder() {  # who listens on TCP port $1: "nginx (pid 123)", "a process" or "" when free
    if command -v ss >/dev/null 2>&1; then
        local line
        line="$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1)"
        [[ -n "$line" ]] || return 0
        if [[ "$line" =~ users:\(\(\"([^\"]+)\",pid=([0-9]+) ]]; then
            printf '%s (pid %s)' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"
        else
            printf 'a process'
        fi
    elif (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
        printf 'a process'
    fi
}

check_port() {  # check_port PORT WHAT VARIABLE: one line and exit if the port is taken
    [[ "$1" =~ ^[0-9]+$ ]] && (($1 > 0 && $1 < 65536)) || die "$3=$1 is not a port"
    local holder
    holder="$(port_holder "$1")"
    [[ -z "$holder" ]] || die "port $1 ($2) is taken by $holder: stop it, or move make dev with $3=<port>"
}

prefixed() {  # prefixed NAME: each line of stdin, after the name
    local tag
    tag="$(printf '%-17s' "[$1]")"
    awk -v tag="$tag" '{ print tag " " $0; fflush() }'
}

start() {  # start NAME COMMAND...: a child that dies with us, its output prefixed with its name
    local name="$1"
    shift
    # The prefixer ignores the stop signals and ends with its input, so a service's shutdown
    # lines still get printed (and it never writes into a closed pipe).
    "${DIE_WITH_US[@]}" "$@" > >(trap '' INT TERM; prefixed "$name") 2>&1 &
    PIDS[$name]=$!
}

running() {  # any of our processes left?
    local pid
    for pid in "${PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null && return 0
    done
    return 1
}

stopping=0
stop_all() {
    ((stopping)) && return
    stopping=1
    trap '' INT TERM
    ((${#PIDS[@]})) || return 0
    say "stopping ${!PIDS[*]}"
    local name
    for name in "${!PIDS[@]}"; do
        kill -TERM "${PIDS[$name]}" 2>/dev/null || true
    done
    # Graceful first (services finish in-flight work, within their shutdown deadline); then KILL.
    local waited=0
    while ((waited < 250)) && running; do
        sleep 0.1
        waited=$((waited + 1))
    done
    if running; then
        say "still running after 25 s: killing"
        for name in "${!PIDS[@]}"; do
            kill -KILL "${PIDS[$name]}" 2>/dev/null || true
        done
    fi
    wait 2>/dev/null || true
}

cleanup() {
    stop_all
    [[ -n "$workdir" && -d "$workdir" ]] && rm -rf "$workdir"
}

# Ctrl-C and SIGTERM are the normal way to stop: a clean exit, not an error.
trap 'exit 0' INT TERM
trap cleanup EXIT

# --- go --------------------------------------------------------------------------------------

command -v uv >/dev/null 2>&1 || die "uv is missing: pip install uv"
[[ "$action" == migrate ]] || command -v nginx >/dev/null 2>&1 \
    || die "nginx is missing (the gateway): apt-get install nginx"

uv sync --all-packages --quiet # once, so the services do not race to sync the environment
# The environment's python itself, not `uv run`: uv would stand between us and the service, and a
# service whose parent is uv does not die with us.
python="$(uv run --no-sync python -c 'import sys; print(sys.executable)')"

available=()
declare -A PORTS=()
for entry in "${SERVICES[@]}"; do
    IFS='|' read -r name port role package <<<"$entry"
    PORTS[$name]="$(port_of "$port")"
    [[ -f "services/$name/pyproject.toml" ]] && available+=("$entry")
done
((${#available[@]})) || die "no service found under services/"

service_env() {  # service_env NAME ROLE: `env` and the service's variables, NUL-separated
    local name="$1" role="$2"
    local vars=(DATABASE_URL="$service_url" PORT="${PORTS[$name]}" HOST=127.0.0.1)
    [[ "$DEV_DB_ROLES" == 1 ]] && vars+=(DB_ROLE="$role" DB_OWNER_ROLE="${role}_owner")
    # its own broker login (provisioned below), on AMQP_URL's host and vhost
    [[ "$broker_users" == 1 ]] \
        && vars+=(AMQP_URL="$(uv run --no-sync python -m lf_messaging.provision --amqp-url "$AMQP_URL" url "$name")")
    case "$name" in # what one service needs to find another (their ports may have moved)
        wallet-api) vars+=(BILLING_WEBHOOK_URL="http://127.0.0.1:${PORTS[billing-webhook]}") ;;
        # Reserves and settles in the dev wallet; the built-in `local` provider paced so that a
        # stream looks like one (LOCAL_TOKEN_DELAY_MS=0 for answers at once).
        execution-proxy) vars+=(WALLET_API_URL="http://127.0.0.1:${PORTS[wallet-api]}"
            LOCAL_TOKEN_DELAY_MS="${LOCAL_TOKEN_DELAY_MS:-15}") ;;
        # Its evaluation and work run at the dev execution-proxy (the `local` provider).
        lightning-jobs) vars+=(EXECUTION_PROXY_URL="http://127.0.0.1:${PORTS[execution-proxy]}") ;;
    esac
    printf '%s\0' env "${vars[@]}"
}

if [[ "$action" == migrate ]]; then
    trap - EXIT
    ensure_database
    for entry in "${available[@]}"; do
        IFS='|' read -r name port role package <<<"$entry"
        mapfile -d '' environment < <(service_env "$name" "$role")
        "${environment[@]}" "$python" -m "$package" migrate
    done
    exit 0
fi

# Every port before anything starts: a taken one is a line, not a traceback.
check_port "$GATEWAY_PORT" gateway GATEWAY_PORT
for entry in "${available[@]}"; do
    IFS='|' read -r name port role package <<<"$entry"
    check_port "${PORTS[$name]}" "$name" "${port%%:*}"
done
if [[ " ${available[*]} " == *" billing-webhook|"* && -z "${LEMONSQUEEZY_API_URL:-}" ]]; then
    check_port "$LEMONSQUEEZY_PORT" "the fake LemonSqueezy" LEMONSQUEEZY_PORT
fi
if [[ " ${available[*]} " == *" platform-api|"* && -z "${CHAINABIT_API_URL:-}" ]]; then
    check_port "$CHAINABIT_PORT" "the fake Chainabit" CHAINABIT_PORT
fi

ensure_database
# One broker user per service (publishes only its own context's keys), and the topology of
# infra/rabbitmq/definitions.json: each consumer declares its queue when it starts, but a producer
# may publish first (billing-webhook relaying its seeded catalogue before wallet-api is up), and an
# unroutable message is dropped. If that fails (the broker is away, or AMQP_URL's user may not
# manage users), it is a warning: services connect in the background, as AMQP_URL's own login.
if uv run --no-sync python -m lf_messaging.provision --amqp-url "$AMQP_URL" dev; then
    broker_users=1
else
    say "warning: broker users not provisioned (see above): every service logs in as AMQP_URL's user"
fi

started=()
# billing-webhook's LemonSqueezy: the fake unless one is given. The fake accepts any API key,
# answers checkouts like the real API and never sends webhooks: `python -m billing_webhook
# deliveries send` plays LemonSqueezy's side (see services/billing-webhook/README.md).
lemonsqueezy=""
if [[ " ${available[*]} " == *" billing-webhook|"* ]]; then
    if [[ -z "${LEMONSQUEEZY_API_URL:-}" ]]; then
        start lemonsqueezy "$python" -m lf_testing.fakes.lemonsqueezy --port "$LEMONSQUEEZY_PORT"
        export LEMONSQUEEZY_API_URL="http://127.0.0.1:$LEMONSQUEEZY_PORT"
        started+=("lemonsqueezy (fake) :$LEMONSQUEEZY_PORT")
        lemonsqueezy="$LEMONSQUEEZY_API_URL (the fake; set LEMONSQUEEZY_API_URL for a real one)"
    else
        lemonsqueezy="$LEMONSQUEEZY_API_URL"
    fi
fi
# platform-api's partners: the fake Chainabit unless one is given (it demands this dev key).
if [[ " ${available[*]} " == *" platform-api|"* && -z "${CHAINABIT_API_URL:-}" ]]; then
    start chainabit "$python" -m lf_testing.fakes.chainabit --port "$CHAINABIT_PORT" --api-key dev-chainabit-key
    export CHAINABIT_API_URL="http://127.0.0.1:$CHAINABIT_PORT" CHAINABIT_PARTNER_API_KEY=dev-chainabit-key
    started+=("chainabit (fake) :$CHAINABIT_PORT")
fi
for entry in "${available[@]}"; do
    IFS='|' read -r name port role package <<<"$entry"
    mapfile -d '' environment < <(service_env "$name" "$role")
    start "$name" "${environment[@]}" "$python" -m "$package" serve
    started+=("$name :${PORTS[$name]}")
done

workdir="$(mktemp -d "${TMPDIR:-/tmp}/lf-gateway.XXXXXX")"
chmod 755 "$workdir" # nginx workers may run as another user when started as root
for entry in "${SERVICES[@]}"; do # the gateway finds each service where it listens
    IFS='|' read -r name port role package <<<"$entry"
    upstream="$(tr 'a-z-' 'A-Z_' <<<"$name")_UPSTREAM"
    export "$upstream=${!upstream:-127.0.0.1:${PORTS[$name]}}"
done
GATEWAY_LISTEN="127.0.0.1:$GATEWAY_PORT" "$root/infra/gateway/render.sh" "$workdir/nginx.conf"
# One process (no master and workers): it dies with us as a whole, and a worker can never be
# left holding the port.
start gateway nginx -p "$workdir" -c "$workdir/nginx.conf" -e stderr -g "daemon off; master_process off;"

say "database ${service_url#*@}, broker ${AMQP_URL#*@}"
say "services: ${started[*]}"
if [[ -n "$lemonsqueezy" ]]; then
    say "billing-webhook's LemonSqueezy: $lemonsqueezy"
fi
say "gateway:  http://127.0.0.1:$GATEWAY_PORT   (Ctrl-C stops everything)"

# Until Ctrl-C, SIGTERM, or the first process to exit.
status=0
wait -n || status=$?
if ((!stopping)); then
    say "a process exited (status $status): stopping the others"
fi
exit "$status"
