"""The SSRF guard for outgoing webhooks: a URL must be https and every address its host resolves to public.

A webhook makes the server send requests to an address an admin typed; without a guard that is a
way to reach the database, a cloud metadata service (169.254.169.254) or an admin page on the
internal network. So a URL is checked when it is added and again before every send (DNS can
change between the two), and the sender then connects to an address it checked (bot.adapters.
webhook.sender pins it), so a name that resolves differently a moment later gains nothing.

Refused: any scheme but https, user:password in the URL, and a host of which *any* address is
private, loopback, link-local, multicast, reserved, unspecified or otherwise not global (an IPv4
address inside IPv6, ``::ffff:10.0.0.1``, is judged as the IPv4 one). ``allow_private``
(``CHATCRM_WEBHOOK_ALLOW_PRIVATE=1``, for tests and on-premises receivers) lifts both rules.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from crm_core.errors import ValidationError
from crm_core.i18n import _

# (host, port) -> the addresses it resolves to, as strings.
Resolver = Callable[[str, int], list[str]]
MAX_URL = 2000


class UnsafeUrl(ValidationError):
    """A webhook URL the guard refuses; the message says why (for the admin who typed it)."""

    def __init__(self, message: str):
        super().__init__(message, field="url")


@dataclass(frozen=True)
class Target:
    url: str
    host: str
    port: int
    # The checked addresses (empty when the guard is lifted and nothing was resolved).
    addresses: tuple[str, ...] = ()


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6); OSError when it does not resolve."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("fe80::1%eth0")
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved or ip.is_unspecified
    )


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def check_url(url: str, *, allow_private: bool = False, resolver: Resolver = resolve) -> Target:
    """The URL's target if it may be called; UnsafeUrl (a ValidationError on ``url``) otherwise."""
    url = (url or "").strip()
    if not url or len(url) > MAX_URL:
        raise UnsafeUrl(_("give the endpoint's URL (https://…, at most {limit} characters)", limit=MAX_URL))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeUrl(_("{url} is not a URL", url=repr(url))) from None
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme.lower() not in allowed:
        raise UnsafeUrl(_("{url}: webhook URLs must start with https://", url=repr(url)))
    if parts.username or parts.password:
        raise UnsafeUrl(_("put no user name or password in the URL: receivers check the signature instead"))
    host = (parts.hostname or "").strip()
    if not host:
        raise UnsafeUrl(_("{url} has no host", url=repr(url)))
    port = port or (443 if parts.scheme.lower() == "https" else 80)
    if allow_private:
        return Target(url, host, port)
    try:
        # An address written in the URL is the address; only names are looked up.
        addresses = [str(ipaddress.ip_address(host))] if _is_address(host) else resolver(host, port)
    except (OSError, UnicodeError) as exc:
        raise UnsafeUrl(_("{host} does not resolve ({problem})", host=host, problem=exc)) from None
    if not addresses:
        raise UnsafeUrl(_("{host} does not resolve", host=host))
    for address in addresses:
        try:
            public = is_public(address)
        except ValueError:
            public = False
        if not public:
            raise UnsafeUrl(
                _(
                    "{host} resolves to {address}, which is not a public address: webhooks go to the internet only "
                    "(CHATCRM_WEBHOOK_ALLOW_PRIVATE=1 allows private receivers)",
                    host=host,
                    address=address,
                )
            )
    return Target(url, host, port, tuple(addresses))
