"""The map of alert formats: `receivers[].format` → its `AlertFormat` (one entry per module).

A new format is one module beside these (an object with `AlertFormat`'s shape) and one entry
here; config's list of format names must name it too (config cannot import this package).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from rblwatch.alerts.formats import alertmanager, slack, standard_webhooks
from rblwatch.alerts.formats.base import AlertFormat, Context, Request
from rblwatch.model import Event

FORMATS: Mapping[str, AlertFormat] = MappingProxyType(
    {
        f.name: f
        for f in (
            standard_webhooks.FORMAT,
            slack.FORMAT,
            alertmanager.FORMAT,
        )
    }
)


def format_named(name: str) -> AlertFormat:
    """The format of a receiver; config has refused any name not in `FORMATS`."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown alert format {name!r} (known: {', '.join(FORMATS)})") from None


def event_request(
    fmt: str, event: Event, ctx: Context, *, secret: str | None, now: float, ttl: float
) -> Request:
    """The POST that delivers `event` to a receiver of format `fmt` at time `now`."""
    return format_named(fmt).event_request(event, ctx, secret=secret, now=now, ttl=ttl)


__all__ = ["FORMATS", "event_request", "format_named"]
