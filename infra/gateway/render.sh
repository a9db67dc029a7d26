#!/usr/bin/env bash
# Render the gateway's nginx.conf from its template: infra/gateway/render.sh [OUTPUT]
# (standard output without OUTPUT). Only the variables below are substituted, so nginx's own
# $variables are left alone. Their defaults suit `make dev` (every service on 127.0.0.1).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
template="${GATEWAY_TEMPLATE:-$here/nginx.conf.template}"

default_resolver() {
    # Only used for upstreams given by name; IP literals need no DNS.
    local ns
    ns="$(awk '$1 == "nameserver" { print $2; exit }' /etc/resolv.conf 2>/dev/null || true)"
    ns="${ns:-127.0.0.1}"
    [[ "$ns" == *:* ]] && ns="[$ns]"  # an IPv6 address needs brackets in nginx
    printf '%s' "$ns"
}

export WALLET_API_UPSTREAM="${WALLET_API_UPSTREAM:-127.0.0.1:8101}"
export EXECUTION_PROXY_UPSTREAM="${EXECUTION_PROXY_UPSTREAM:-127.0.0.1:8102}"
export BILLING_WEBHOOK_UPSTREAM="${BILLING_WEBHOOK_UPSTREAM:-127.0.0.1:8103}"
export LIGHTNING_JOBS_UPSTREAM="${LIGHTNING_JOBS_UPSTREAM:-127.0.0.1:8104}"
export PLATFORM_API_UPSTREAM="${PLATFORM_API_UPSTREAM:-127.0.0.1:8787}"
export GATEWAY_RESOLVER="${GATEWAY_RESOLVER:-$(default_resolver)}"
# "resolve" (nginx >= 1.27.3) when upstreams are names that may change or not exist yet; make dev's
# are IP literals, looked up never, and its nginx may be older.
export GATEWAY_SERVER_RESOLVE="${GATEWAY_SERVER_RESOLVE:-}"

HOSTS=(
    WALLET_API_UPSTREAM
    EXECUTION_PROXY_UPSTREAM
    BILLING_WEBHOOK_UPSTREAM
    LIGHTNING_JOBS_UPSTREAM
    PLATFORM_API_UPSTREAM
    GATEWAY_RESOLVER
)
VARIABLES=("${HOSTS[@]}" GATEWAY_SERVER_RESOLVE)

for name in "${HOSTS[@]}"; do
    # Values go into nginx directives verbatim: refuse anything but host[:port]-like text.
    if [[ ! "${!name}" =~ ^[][A-Za-z0-9._:-]+$ ]]; then
        echo "render.sh: $name='${!name}' is not a host[:port]" >&2
        exit 2
    fi
done
if [[ -n "$GATEWAY_SERVER_RESOLVE" && "$GATEWAY_SERVER_RESOLVE" != resolve ]]; then
    echo "render.sh: GATEWAY_SERVER_RESOLVE='$GATEWAY_SERVER_RESOLVE' is neither empty nor resolve" >&2
    exit 2
fi

render() {
    if command -v envsubst >/dev/null 2>&1; then
        envsubst "$(printf '${%s} ' "${VARIABLES[@]}")" <"$template"
    else
        local expressions=() name
        for name in "${VARIABLES[@]}"; do
            expressions+=(-e "s|\${$name}|${!name}|g")
        done
        sed "${expressions[@]}" "$template"
    fi
}

# GATEWAY_LISTEN (optional, e.g. 127.0.0.1:8886): where the gateway listens instead of the
# template's 8786 (make dev's GATEWAY_PORT, tests on a free port). Not a template variable, so
# compose's rendering of the template is unchanged.
listen() {
    if [[ -z "${GATEWAY_LISTEN:-}" ]]; then
        cat
        return
    fi
    if [[ ! "$GATEWAY_LISTEN" =~ ^[][A-Za-z0-9.:]+$ ]]; then
        echo "render.sh: GATEWAY_LISTEN='$GATEWAY_LISTEN' is not a [host:]port" >&2
        exit 2
    fi
    sed "s|listen 8786 default_server;|listen $GATEWAY_LISTEN default_server;|"
}

if [[ $# -ge 1 ]]; then
    render | listen >"$1"
else
    render | listen
fi
