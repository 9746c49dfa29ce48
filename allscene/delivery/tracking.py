"""Signed tracking URLs: impressions, clicks and conversions that cannot be forged or replayed.

A decision's tracking URL carries the decision id and what was shown (campaign, creative,
placement, price), an expiry, and an HMAC-SHA256 signature over all of it with the server's
secret. :meth:`Tracker.verify` refuses a missing or wrong signature (compared in constant
time), an expired link and a changed field; :meth:`Tracker.accept` also refuses the second
use of the same link (de-duplicated through the online state, so across server processes
when it is Redis). The person is not in the URL: the decision log maps the decision to them.

Examples
--------
>>> from allscene.storage.online import MemoryState
>>> t = Tracker(b"secret", MemoryState())
>>> url = t.url("https://ads.example/t/imp", "imp",
...             {"d": "dec1", "c": "c1", "cr": "winter", "p": "phone_splash", "price": "0.05"},
...             now=1_790_000_000)
>>> q = query_of(url)
>>> t.accept("imp", q, now=1_790_000_100)["d"], t.accept("imp", q, now=1_790_000_101)
Traceback (most recent call last):
...
allscene.delivery.tracking.TrackingError: already counted: this imp link was used before
>>> q["price"] = "0.01"; t.verify("imp", q, now=1_790_000_100)
Traceback (most recent call last):
...
allscene.delivery.tracking.TrackingError: bad signature
"""

from __future__ import annotations

import base64
import hmac
import re
from urllib.parse import parse_qsl, quote_plus, urlsplit

KINDS = ("imp", "click", "conv")
RESERVED = ("exp", "sig")


class TrackingError(ValueError):
    """A tracking request that is not counted, saying why."""


_PLAIN = re.compile(r"[A-Za-z0-9_.\-~]*")


def _q(v: str, _plain=_PLAIN.fullmatch) -> str:
    return v if _plain(v) else quote_plus(v)


def _encode(fields: dict[str, str]) -> str:
    """``urlencode(sorted(fields.items()))``, without quoting what needs none (ids, prices):
    the same text, several times faster on the request path."""
    return "&".join(f"{k}={_q(v)}" for k, v in sorted(fields.items()))


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))


class Tracker:
    """Signs and checks tracking links.

    Parameters
    ----------
    secret
        The HMAC key (``ALLSCENE_TRACKING_SECRET`` in a deployment; 32 random bytes or more).
    state
        Online state with ``first_time(key, ttl_s, now)``: remembers used links.
    ttl_s
        How long a link stays valid (and is remembered); a day by default.
    """

    def __init__(self, secret: bytes, state, *, ttl_s: int = 86_400):
        if len(secret) < 6:
            raise ValueError("the tracking secret is too short")
        self.secret, self.state, self.ttl = secret, state, ttl_s

    def _sig(self, kind: str, fields: dict[str, str]) -> str:
        return self._mac(kind, _encode(fields))

    def _mac(self, kind: str, body: str) -> str:
        mac = hmac.digest(self.secret, (kind + "\n" + body).encode("utf-8"), "sha256")
        return base64.urlsafe_b64encode(mac[:18]).decode("ascii")

    def url(self, base: str, kind: str, fields: dict[str, str], *, now: float) -> str:
        """A signed link for ``kind`` (imp, click, conv) carrying ``fields``."""
        return self.link(base, kind, self.body(fields, now=now))

    @staticmethod
    def prepare(fields: dict[str, str]) -> tuple[tuple[str, str], ...]:
        """Fields that many links share (advertiser, campaign, creative, placement), encoded
        once, for :meth:`body`'s ``prepared``."""
        if any(k in RESERVED or k == "d" for k in fields):
            raise ValueError("prepared fields may not use d, exp or sig")
        return tuple((k, f"{k}={_q(str(v))}") for k, v in fields.items())

    def body(self, fields: dict[str, str], *, now: float,
             prepared: tuple[tuple[str, str], ...] = ()) -> str:
        """The query of a link (fields, ``prepared`` fields and expiry), encoded once for
        several kinds: the same text as ``urlencode`` of all of them, sorted.

        >>> t = Tracker(b"secret", None)
        >>> t.body({"d": "x1", "price": "0.05"}, now=100, prepared=t.prepare({"c": "a b"}))
        'c=a+b&d=x1&exp=86500&price=0.05'
        """
        if "d" not in fields or any(k in RESERVED for k in fields):
            raise ValueError("fields need a decision id 'd' and may not use exp or sig")
        pairs = [(k, f"{k}={_q(v if type(v) is str else str(v))}") for k, v in fields.items()]
        pairs += prepared
        pairs.append(("exp", f"exp={int(now) + self.ttl}"))
        pairs.sort()
        return "&".join([p for _, p in pairs])

    def link(self, base: str, kind: str, body: str) -> str:
        """``base?body&sig=...``: the body signed for ``kind``."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        return f"{base}?{body}&sig={self._mac(kind, body)}"

    def verify(self, kind: str, query: dict[str, str], *, now: float) -> dict[str, str]:
        """The signed fields of a tracking request, or :class:`TrackingError`."""
        sig = query.get("sig")
        if not sig:
            raise TrackingError("missing signature")
        fields = {k: v for k, v in query.items() if k != "sig"}
        if not hmac.compare_digest(sig, self._sig(kind, fields)):
            raise TrackingError("bad signature")
        try:
            exp = int(fields["exp"])
        except (KeyError, ValueError):
            raise TrackingError("missing expiry") from None
        if now > exp:
            raise TrackingError("expired link")
        return {k: v for k, v in fields.items() if k != "exp"}

    def accept(self, kind: str, query: dict[str, str], *, now: float) -> dict[str, str]:
        """:meth:`verify`, then refuse a link already used (one impression per decision, one
        click, one conversion)."""
        fields = self.verify(kind, query, now=now)
        if not self.state.first_time(f"{kind}:{fields['d']}", self.ttl, now):
            raise TrackingError(f"already counted: this {kind} link was used before")
        return fields
