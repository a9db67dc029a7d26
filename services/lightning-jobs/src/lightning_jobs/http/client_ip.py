"""Whose request this is, for the per-IP limits (the demo's, the Gemini routes').

The gateway (infra/gateway/nginx.conf.template) sets ``X-Real-IP`` to the address it was reached
from, overwriting whatever the client sent, and appends that address to ``X-Forwarded-For``. Those
headers mean something only when the gateway sent them: anybody reaching the service directly can
write them too. So they are read only when the connection's peer is one of ``TRUSTED_PROXIES`` (the
gateway's addresses); otherwise the peer address is the client."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import TYPE_CHECKING

from aiohttp import web

from lf_web.ratelimit import enforce

if TYPE_CHECKING:  # keys.py imports Networks from here
    from lightning_jobs.http.keys import PerIpLimit

Networks = tuple[IPv4Network | IPv6Network, ...]


def trusted_networks(setting: str) -> Networks:
    """``TRUSTED_PROXIES``: comma-separated addresses or CIDR networks."""
    return tuple(ip_network(part.strip(), strict=False) for part in setting.split(",") if part.strip())


def _is_trusted(peer: str | None, trusted: Networks) -> bool:
    if not peer:
        return False
    try:
        address = ip_address(peer)
    except ValueError:  # a unix socket or the like: not the gateway
        return False
    return any(address in network for network in trusted)


def client_ip(request: web.Request, trusted: Networks) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    peer_host = peer[0] if isinstance(peer, tuple) and peer else None
    if not _is_trusted(peer_host, trusted):
        return peer_host or "unknown"
    real_ip = request.headers.get("X-Real-IP", "").strip()
    if real_ip:
        return real_ip
    # Only the last hop is the gateway's own: earlier entries came from the client.
    forwarded = [hop.strip() for hop in request.headers.get("X-Forwarded-For", "").split(",") if hop.strip()]
    return forwarded[-1] if forwarded else peer_host or "unknown"


async def admit_per_ip(request: web.Request, allowance: PerIpLimit, scope: str) -> None:
    """Take one of the client IP's allowance under ``scope``, or refuse with 429 ``rate_limited``;
    either way the answer carries the ``X-RateLimit-*`` headers."""
    ip = client_ip(request, allowance.trusted_proxies)
    await enforce(request, allowance.limiter, f"{scope}:{ip}", allowance.limit, allowance.period_seconds)
