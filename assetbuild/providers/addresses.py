"""Where the client may connect: the API's own host, and otherwise only global addresses.

A result URL (or a redirect) comes from the server, so it may point anywhere: at the
machine's own services (``http://2130706433/``, ``127.1``, ``0``, ``[::127.0.0.1]``),
at a private network, or at a name that resolves to one of them. Every connection to a
host other than the API's is resolved here, every address it resolves to must be
global, and the connection is made to the address that was checked: no second lookup
a name server could answer differently (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from assetbuild.errors import DownloadError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class RefusedAddress(DownloadError):
    """A connection to an internal address that is not the API's host was refused."""


def normalise_host(host: str) -> str:
    """A host as compared with the API's: lower case, without brackets."""
    return host.strip("[]").lower()


def is_public(address: Address) -> bool:
    """Whether ``address`` is global, including any IPv4 address an IPv6 one embeds
    (IPv4-mapped, IPv4-compatible, 6to4, Teredo), which ``is_global`` alone misses."""
    if not address.is_global or address.is_multicast:
        return False
    if isinstance(address, ipaddress.IPv6Address):
        embedded = [address.ipv4_mapped, address.sixtofour,
                    address.teredo[1] if address.teredo else None]
        if int(address) >> 32 == 0:  # ::a.b.c.d, the deprecated IPv4-compatible form
            embedded.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
        return all(is_public(v4) for v4 in embedded if v4 is not None)
    return True


async def public_address(host: str, port: int) -> str:
    """The address to connect to for ``host``: resolved (numeric forms too, as the C
    library reads them), every answer checked; raise RefusedAddress if any is internal."""
    loop = asyncio.get_running_loop()
    try:
        answers = await loop.getaddrinfo(normalise_host(host), port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DownloadError(f"cannot resolve {host[:200]!r} ({exc})") from None
    checked = [ipaddress.ip_address(str(answer[4][0]).split("%")[0]) for answer in answers]
    internal = [str(a) for a in checked if not is_public(a)]
    if internal or not checked:
        raise RefusedAddress(f"refusing to connect to {host[:200]!r}: it resolves to an "
                             f"internal address ({', '.join(internal[:3])}) and is not "
                             "the API's host")
    return str(checked[0])
