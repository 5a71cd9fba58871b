"""Who may call the aggregator's webhooks (Africa's Talking USSD and SMS callbacks).

The aggregator does not sign its callbacks (Twilio does), so a request is accepted only when

* it comes from one of the configured source networks (``AT_ALLOWED_SOURCES``, CIDRs; the
  aggregator publishes or tells the addresses it calls from), and
* its path ends with the configured secret (``/webhooks/ussd/webhook/<AT_CALLBACK_SECRET>``):
  the callback URL is set only in the aggregator's dashboard, so a stranger who guesses the
  address range still lacks it.

Without a secret (``make run``, credentials.yml) only loopback callers are accepted, for local
trials with ``make sim --ussd`` or a tunnel on the same machine. Behind a reverse proxy the
peer is the proxy: with ``AT_TRUST_PROXY=true`` the client is the last address of
``X-Forwarded-For`` (the one the proxy itself appended; earlier ones may be forged).
"""
from __future__ import annotations

import hmac
import ipaddress
import logging
from typing import Any, List, Optional, Sequence, Text, Union

logger = logging.getLogger(__name__)

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def parse_networks(cidrs: Sequence[Text]) -> List[Network]:
    """``["196.201.214.0/24", "10.1.2.3"]`` -> networks; a bad entry raises ``ValueError`` naming it."""
    networks = []
    for cidr in cidrs or ():
        try:
            networks.append(ipaddress.ip_network(str(cidr).strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"AT_ALLOWED_SOURCES: {cidr!r} is not an address or network ({exc}).") from exc
    return networks


def _address(text: Optional[Text]) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    try:
        address = ipaddress.ip_address((text or "").strip().strip("[]"))
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:1.2.3.4 on dual-stack sockets
    return mapped or address


class CallbackGuard:
    """``is_valid(request)``: the request comes from an allowed address with the right secret."""

    def __init__(self, secret: Optional[Text], allowed_sources: Sequence[Text], trust_proxy: bool = False) -> None:
        self.secret = secret or None
        self.networks = parse_networks(allowed_sources)
        self.trust_proxy = trust_proxy
        if not self.secret:
            logger.warning("AT_CALLBACK_SECRET is not set: aggregator callbacks are accepted from loopback only "
                           "(local trials).")

    def client_address(self, request: Any) -> Optional[Any]:
        if self.trust_proxy:
            forwarded = (request.headers.get("x-forwarded-for") or "").split(",")
            if forwarded[-1].strip():
                return _address(forwarded[-1])
        return _address(getattr(request, "ip", None))

    def source_allowed(self, request: Any) -> bool:
        address = self.client_address(request)
        if address is None:
            return False
        if not self.secret or not self.networks:
            return address.is_loopback
        return any(address in network for network in self.networks)

    def secret_matches(self, given: Optional[Text]) -> bool:
        if not self.secret:
            return True  # loopback only, see source_allowed
        return hmac.compare_digest((given or "").encode("utf-8"), self.secret.encode("utf-8"))

    def is_valid(self, request: Any) -> bool:
        given = (getattr(request, "match_info", None) or {}).get("secret")
        return self.source_allowed(request) and self.secret_matches(given)
