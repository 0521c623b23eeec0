"""Router discovery: solicit Router Advertisements (RFC 4861 §6.3.7) or listen for them.

A Router Solicitation goes to all-routers (ff02::2) or to one router; every advertisement
that passes RFC 4861 §6.1.2 (hop limit 255, link-local source, code 0, at least 16 bytes,
well-formed options) is decoded into a `Router`. As rdisc6 does, all advertisements that
arrive within the wait of a try are shown, and a try that got one ends the run.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator

from gnt.core.packets import icmpv6
from gnt.core.sockets import NDP_HOP_LIMIT, NDPSocket, interface_mac
from gnt.core.sockets import NdpReceived as Received
from gnt.errors import DecodeError
from gnt.ndisc.models import (
    Dnssl,
    Ignored,
    LinkLayerItem,
    MTUItem,
    NoResponse,
    Prefix,
    Rdnss,
    RouteInfo,
    Router,
    Soliciting,
    TimedOut,
)
from gnt.ndisc.ndisc import parse_ipv6

ALL_ROUTERS = bytes.fromhex("ff020000000000000000000000000002")  # ff02::2, RFC 4291 §2.7.1


def parse_router(text: str | None) -> bytes:
    return ALL_ROUTERS if text is None else parse_ipv6(text).packed


def router_from(ra: icmpv6.RouterAdvertisement, source: str, ifname: str) -> Router:
    """The user-facing model of a decoded advertisement."""
    router = Router(
        source=source, hop_limit=ra.cur_hop_limit, managed=ra.managed, other=ra.other,
        preference=ra.preference_text, router_lifetime=ra.router_lifetime,
        reachable_time=ra.reachable_time, retrans_timer=ra.retrans_timer, mtu=ra.mtu,
        home_agent=ra.home_agent, proxy=ra.proxy, ifname=ifname,
    )
    for opt in ra.options:
        if isinstance(opt, icmpv6.PrefixInformation):
            prefix = Prefix(opt.prefix_text, opt.on_link, opt.autonomous, opt.valid_lifetime,
                            opt.preferred_lifetime, opt.router_address)
            router.prefixes.append(prefix)
            router.options.append(prefix)
        elif isinstance(opt, icmpv6.RouteInformation):
            route = RouteInfo(opt.prefix_text, opt.preference_text, opt.lifetime)
            router.routes.append(route)
            router.options.append(route)
        elif isinstance(opt, icmpv6.RDNSSOption):
            servers = [Rdnss(s, opt.lifetime) for s in opt.servers_text]
            router.rdnss.extend(servers)
            router.options.append(servers)
        elif isinstance(opt, icmpv6.DNSSLOption):
            domains = [Dnssl(d, opt.lifetime) for d in opt.domains]
            router.dnssl.extend(domains)
            router.options.append(domains)
        elif isinstance(opt, icmpv6.MTUOption):
            router.options.append(MTUItem(opt.mtu))
        elif isinstance(opt, icmpv6.LinkLayerOption) and opt.type == icmpv6.OPT_SOURCE_LLADDR:
            router.lladdr = opt.lladdr_text
            router.options.append(LinkLayerItem(opt.lladdr_text))
    return router


def check_advertisement(received: Received, router: bytes | None = None) -> icmpv6.RouterAdvertisement | str:
    """The advertisement in `received` if valid (RFC 4861 §6.1.2), else the reason it is not."""
    if received.hop_limit != NDP_HOP_LIMIT:
        return f"hop limit {received.hop_limit}, not 255"
    source = ipaddress.IPv6Address(received.source)
    if not source.is_link_local:
        return "source is not link-local"
    if router is not None and ipaddress.IPv6Address(router).is_link_local and source.packed != router:
        return "not from the router asked"
    try:
        message = icmpv6.decode_ndp(received.data)
    except DecodeError as exc:
        return exc.reason
    if not isinstance(message, icmpv6.RouterAdvertisement):
        return "not a router advertisement"
    if message.code != 0:
        return f"code {message.code}, not 0"
    return message


def solicit(ifname: str, router_text: str | None = None, *, retries: int = 3,
            wait_ms: int = 1000) -> Iterator[object]:
    """Solicit routers on `ifname`; yields Soliciting, Router per advertisement, TimedOut, NoResponse.

    A router given by a global address is solicited by unicast, but advertisements always come
    from link-local addresses (RFC 4861 §6.1.2), so only a link-local router address filters them.
    """
    destination = parse_router(router_text)
    asked = None if router_text is None else destination
    with NDPSocket(ifname, accept=[icmpv6.ROUTER_ADVERT]) as sock:
        mac = interface_mac(ifname)
        options: list[icmpv6.NDOption] = [icmpv6.LinkLayerOption.source(mac)] if mac else []
        solicitation = icmpv6.RouterSolicitation(options=options).encode()
        yield Soliciting(icmpv6.addr_text(destination), ifname)
        for _ in range(retries):
            sock.send(solicitation, destination)
            answered = False
            deadline = time.monotonic() + wait_ms / 1000
            while (packet := sock.receive(deadline - time.monotonic())) is not None:
                checked = check_advertisement(packet, asked)
                if isinstance(checked, str):
                    yield Ignored(packet.source, checked)
                    continue
                answered = True
                yield router_from(checked, packet.source, ifname)
            if answered:
                return
            yield TimedOut()
        yield NoResponse()


def listen(ifname: str, *, count: int | None = None, wait_ms: int | None = None) -> Iterator[object]:
    """Yield every valid advertisement that arrives on `ifname` (no solicitation sent).

    Stops after `count` advertisements or `wait_ms` milliseconds when given, else runs until
    interrupted; ends with NoResponse when nothing valid arrived before the time ran out.
    """
    with NDPSocket(ifname, accept=[icmpv6.ROUTER_ADVERT]) as sock:
        seen = 0
        deadline = None if wait_ms is None else time.monotonic() + wait_ms / 1000
        while count is None or seen < count:
            remaining = 3600.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                break
            packet = sock.receive(remaining)
            if packet is None:
                continue
            checked = check_advertisement(packet)
            if isinstance(checked, str):
                yield Ignored(packet.source, checked)
                continue
            seen += 1
            yield router_from(checked, packet.source, ifname)
        if seen == 0:
            yield NoResponse()
