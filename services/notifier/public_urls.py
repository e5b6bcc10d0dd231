"""Subscriber webhooks go to public addresses only.

Anyone may subscribe on the public status page, so without this check a subscription could make
the notifier call inside our own network: a cloud metadata service, an admin port on loopback, a
database's HTTP interface. The check runs when someone subscribes and again before every delivery,
and the delivering session's resolver drops non-public addresses, so a name that starts resolving
inside later (DNS rebinding) gets no request either. `notifier.subscriber_webhooks: any` turns it
off for closed networks and tests; `off` allows e-mail subscriptions only.
"""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver


class NotPublic(ValueError):
    """The URL's host is, or resolves to, an address that is not on the public internet."""


def is_public(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%", 1)[0])  # drop an IPv6 zone (fe80::1%eth0)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is loopback
    return address.is_global


async def check_public(url: str) -> None:
    """Raise NotPublic, saying which host and addresses, unless every address of the host is public."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise NotPublic(f"{url!r} names no host")
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise NotPublic(f"{host} does not resolve ({e.strerror})") from None
    inside = sorted({str(info[4][0]) for info in infos if not is_public(str(info[4][0]))})
    if inside:
        raise NotPublic(f"{host} is not a public address ({', '.join(inside)})")


class PublicOnlyResolver(AbstractResolver):
    """aiohttp's resolver with every non-public address removed from the answer."""

    def __init__(self) -> None:
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[ResolveResult]:
        results = [r for r in await self._inner.resolve(host, port, family) if is_public(r["host"])]
        if not results:
            raise OSError(f"{host} resolves to no public address")
        return results

    async def close(self) -> None:
        await self._inner.close()
