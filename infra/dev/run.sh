#!/usr/bin/env bash
# `make dev`: the whole system without Docker, against a local PostgreSQL and RabbitMQ.
# `infra/dev/run.sh migrate` (`make migrate`): only the database and each service's migrations.
#
# - makes sure the database exists on DATABASE_URL's server (idempotent);
# - declares the broker topology of infra/rabbitmq/definitions.json (exchanges, the consumers'
#   queues), so that nothing a service publishes before its consumer's first start is dropped;
# - starts every service that exists in this checkout as a local process, each output line
#   prefixed with its name (each `serve` applies its own migrations first);
# - with billing-webhook, starts the fake LemonSqueezy (lf_testing.fakes.lemonsqueezy) on :8790
#   and points billing-webhook at it, unless LEMONSQUEEZY_API_URL is set: checkouts work without
#   a LemonSqueezy account;
# - renders the gateway config into a temporary directory and runs nginx on :8786;
# - on Ctrl-C or SIGTERM stops everything (SIGTERM to each process group, so services shut down
#   gracefully), and stops everything too as soon as one of them exits.
#
# Environment (all optional; every variable is passed on to the services):
#   DATABASE_URL   any database on the server to use; the services get the same server with
#                  database DEV_DATABASE        (default postgresql://postgres@127.0.0.1:5432/postgres)
#   DEV_DATABASE   the platform's database name (default lenserfight)
#   DEV_DB_ROLES   1 (default): each service switches to its own role (DB_ROLE), created if
#                  missing, which needs a superuser or CREATEROLE login; 0: use the login as is
#   AMQP_URL       RabbitMQ                     (default amqp://guest:guest@127.0.0.1:5672/)
#   LEMONSQUEEZY_API_URL  a LemonSqueezy API for billing-webhook (with LEMONSQUEEZY_API_KEY and
#                  LEMONSQUEEZY_STORE_ID); unset: the fake on 127.0.0.1:8790
set -euo pipefail
set -m # every background job gets a process group of its own, stopped as a whole

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"

# name | port | database role | python package (`python -m <package> serve|migrate`).
# A service runs once services/<name>/ exists.
SERVICES=(
    "wallet-api|8101|wallet_api|wallet_api"
    "execution-proxy|8102|execution_proxy|execution_proxy"
    "billing-webhook|8103|billing_webhook|billing_webhook"
    "lightning-jobs|8104|lightning_jobs|lightning_jobs"
    "platform-api|8787|platform_api|platform_api"
)

action="${1:-serve}"
[[ "$action" == serve || "$action" == migrate ]] || { echo "usage: $0 [serve|migrate]" >&2; exit 2; }

export DATABASE_URL="${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
export AMQP_URL="${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/}"
DEV_DATABASE="${DEV_DATABASE:-lenserfight}"
DEV_DB_ROLES="${DEV_DB_ROLES:-1}"

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

declare_topology() {  # the exchanges, queues and bindings of infra/rabbitmq/definitions.json
    # Each consumer declares its queue when it starts, but a producer may publish first (e.g.
    # billing-webhook relaying its seeded catalogue before wallet-api is up): unroutable, dropped.
    # Declaring is idempotent. A broker that is away is only a warning: services connect in the
    # background and keep serving HTTP.
    local error
    error="$(uv run --no-sync python - "$AMQP_URL" infra/rabbitmq/definitions.json 2>&1 <<'PY'
import asyncio, json, sys
import aio_pika

async def main(url: str, path: str) -> None:
    with open(path) as file:
        document = json.load(file)
    connection = await aio_pika.connect(url, timeout=5)
    async with connection:
        channel = await connection.channel()
        for e in document["exchanges"]:
            await channel.declare_exchange(
                e["name"], e["type"], durable=e["durable"], auto_delete=e["auto_delete"],
                internal=e["internal"], arguments=e["arguments"])
        queues = {}
        for q in document["queues"]:
            queues[q["name"]] = await channel.declare_queue(
                q["name"], durable=q["durable"], auto_delete=q["auto_delete"], arguments=q["arguments"])
        for b in document["bindings"]:
            await queues[b["destination"]].bind(b["source"], b["routing_key"], arguments=b["arguments"])

try:
    asyncio.run(main(sys.argv[1], sys.argv[2]))
except Exception as error:  # one line, not a traceback
    sys.exit(f"{type(error).__name__}: {error}")
PY
)" || say "warning: broker topology not declared (${AMQP_URL#*@}): $error"
}

# --- processes -------------------------------------------------------------------------------

declare -A PGIDS=()   # process group of each job, by name
workdir=""

prefixed() {  # prefixed NAME: each line of stdin, after the name
    local tag
    tag="$(printf '%-17s' "[$1]")"
    awk -v tag="$tag" '{ print tag " " $0; fflush() }'
}

start() {  # start NAME COMMAND...: run it in a process group of its own
    local name="$1"
    shift
    # The prefixer ignores the stop signals and ends with its input, so a service's shutdown
    # lines still get printed (and it never writes into a closed pipe).
    ( "$@" 2>&1 | (trap '' INT TERM; prefixed "$name") ) &
    PGIDS[$name]=$!
}

running() {  # any process left in any of our process groups?
    local name
    for name in "${!PGIDS[@]}"; do
        kill -0 -- "-${PGIDS[$name]}" 2>/dev/null && return 0
    done
    return 1
}

stopping=0
stop_all() {
    ((stopping)) && return
    stopping=1
    trap '' INT TERM
    set +m # no "Terminated" notices for the jobs we stop on purpose
    say "stopping ${!PGIDS[*]}"
    local name
    for name in "${!PGIDS[@]}"; do
        kill -TERM -- "-${PGIDS[$name]}" 2>/dev/null || true
    done
    # Graceful first (services finish in-flight work, up to their shutdown timeout); then KILL.
    local waited=0
    while ((waited < 150)) && running; do
        sleep 0.1
        waited=$((waited + 1))
    done
    if running; then
        say "still running after 15 s: killing"
        for name in "${!PGIDS[@]}"; do
            kill -KILL -- "-${PGIDS[$name]}" 2>/dev/null || true
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
ensure_database

available=()
for entry in "${SERVICES[@]}"; do
    IFS='|' read -r name port role package <<<"$entry"
    [[ -f "services/$name/pyproject.toml" ]] && available+=("$entry")
done
((${#available[@]})) || die "no service found under services/"

service_env() {  # the environment of one service: its database, port and role
    local role_setting=()
    [[ "$DEV_DB_ROLES" == 1 ]] && role_setting=(DB_ROLE="$3")
    printf '%s\0' env DATABASE_URL="$service_url" PORT="$2" HOST=127.0.0.1 "${role_setting[@]}"
}

if [[ "$action" == migrate ]]; then
    trap - EXIT
    for entry in "${available[@]}"; do
        IFS='|' read -r name port role package <<<"$entry"
        mapfile -d '' environment < <(service_env "$name" "$port" "$role")
        "${environment[@]}" uv run --no-sync python -m "$package" migrate
    done
    exit 0
fi

uv run --no-sync python -m lf_messaging.provision --amqp-url "$AMQP_URL" dev || say "warning: broker not provisioned (see above)"
declare_topology

started=()
# billing-webhook's LemonSqueezy: the fake unless one is given. The fake accepts any API key,
# answers checkouts like the real API and never sends webhooks: `python -m billing_webhook
# deliveries send` plays LemonSqueezy's side (see services/billing-webhook/README.md).
lemonsqueezy=""
if [[ " ${available[*]} " == *" billing-webhook|"* ]]; then
    if [[ -z "${LEMONSQUEEZY_API_URL:-}" ]]; then
        start lemonsqueezy uv run --no-sync python -m lf_testing.fakes.lemonsqueezy --port 8790
        export LEMONSQUEEZY_API_URL=http://127.0.0.1:8790
        started+=("lemonsqueezy (fake) :8790")
        lemonsqueezy="$LEMONSQUEEZY_API_URL (the fake; set LEMONSQUEEZY_API_URL for a real one)"
    else
        lemonsqueezy="$LEMONSQUEEZY_API_URL"
    fi
fi
for entry in "${available[@]}"; do
    IFS='|' read -r name port role package <<<"$entry"
    mapfile -d '' environment < <(service_env "$name" "$port" "$role")
    start "$name" "${environment[@]}" uv run --no-sync python -m "$package" serve
    started+=("$name :$port")
done

workdir="$(mktemp -d "${TMPDIR:-/tmp}/lf-gateway.XXXXXX")"
chmod 755 "$workdir" # nginx workers may run as another user when started as root
"$root/infra/gateway/render.sh" "$workdir/nginx.conf"
start gateway nginx -p "$workdir" -c "$workdir/nginx.conf" -e stderr -g "daemon off;"

say "database ${service_url#*@}, broker ${AMQP_URL#*@}"
say "services: ${started[*]}"
if [[ -n "$lemonsqueezy" ]]; then
    say "billing-webhook's LemonSqueezy: $lemonsqueezy"
fi
say "gateway:  http://127.0.0.1:8786   (Ctrl-C stops everything)"

# Until Ctrl-C, SIGTERM, or the first process to exit.
status=0
wait -n || status=$?
if ((!stopping)); then
    say "a process exited (status $status): stopping the others"
fi
exit "$status"
