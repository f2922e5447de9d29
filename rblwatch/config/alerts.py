"""Alert receivers (SPEC §12): where events are delivered, in which format, signed how."""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping

from rblwatch.config.model import EVENT_KINDS, RECEIVER_FORMATS, SIGNED_FORMATS, Receiver
from rblwatch.config.values import (
    DAY,
    HOUR,
    MINUTE,
    _check_http_url,
    _choice,
    _duration,
    _group_name,
    _http_url,
    _int,
    _read_file,
    _text,
)
from rblwatch.config.walker import (
    Parser,
    _Ctx,
    _exclusive,
    _Invalid,
    _items,
    _join,
    _one_of,
    _required,
    _show,
    _unique,
    _walk,
)

MAX_TIMEOUT = MINUTE  # per delivery attempt
MAX_AGE = 30 * DAY
MAX_BACKOFF = DAY
MAX_GROUP_WAIT = HOUR  # Alertmanager's group_wait is seconds to minutes; an hour is ample
# Events per grouped message. A Slack message is at most 50 blocks, a section's text at most
# 3,000 characters and the whole text about 40,000 (longer is cut or refused); the Slack format
# writes one line of at most 250 characters per event, 11 to a section, so 100 events are at
# most 10 sections and 25,000 characters. The other formats' bodies are JSON without such
# limits; 500 is the Alertmanager re-post batch too.
GROUP_MAX = 500
GROUP_MAX_SLACK = 100
MIN_REPEAT = MINUTE  # reminders are swept once a minute
MAX_REPEAT = 30 * DAY

_BACKOFF_FIELDS: Mapping[str, Parser] = {
    "initial": _duration(MAX_BACKOFF),
    "max": _duration(MAX_BACKOFF),
}

_RECEIVER_FIELDS: Mapping[str, Parser] = {
    "name": _group_name,
    "url": _http_url,
    "url_file": lambda ctx, path, raw: _check_http_url(_read_file(ctx, path, raw)),
    "format": _choice(*RECEIVER_FORMATS),
    "events": _items(_choice(*EVENT_KINDS)),
    "groups": _items(_group_name),
    "secret": _text,
    "secret_file": _read_file,
    "timeout": _duration(MAX_TIMEOUT),
    "max_age": _duration(MAX_AGE),
    "backoff": lambda ctx, path, raw: _walk(ctx, path, raw, _BACKOFF_FIELDS),
    "group_wait": _duration(MAX_GROUP_WAIT, zero_ok=True),
    "group_max": _int(1, GROUP_MAX),
    "repeat_interval": _duration(MAX_REPEAT, MIN_REPEAT),
}


def _check_secret(path: str, fmt: str, secret: tuple[str, str] | None) -> str | None:
    """The whsec_ secret of a receiver whose format signs. Never echoes it."""
    if secret is None:
        return None
    key, value = secret
    where = _join(path, key)
    if fmt not in SIGNED_FORMATS:
        signed = " and ".join(SIGNED_FORMATS)
        raise _Invalid(where, f"only {signed} deliveries are signed; remove it for format {fmt}")
    body = value.removeprefix("whsec_")
    try:
        raw_key = base64.b64decode(body, validate=True) if body != value else b""
    except binascii.Error:
        raw_key = b""
    if not 24 <= len(raw_key) <= 64:
        raise _Invalid(
            where, "must be a Standard Webhooks secret: whsec_ and base64 of 24 to 64 bytes"
        )
    return value


def _receiver(ctx: _Ctx, path: str, raw: object) -> Receiver:
    _exclusive(path, raw, ("url", "url_file"), ("secret", "secret_file"))
    fields = _walk(ctx, path, raw, _RECEIVER_FIELDS)
    _required(fields, path, "name")
    url = _one_of(fields, "url", "url_file")
    if url is None:
        raise _Invalid(_join(path, "url"), "required (or url_file)")
    fields["url"] = url[1]
    secret = _one_of(fields, "secret", "secret_file")
    backoff = fields.pop("backoff", {})
    fields.update({f"backoff_{k}": v for k, v in backoff.items()})
    result = Receiver(**fields)
    result = dataclasses.replace(result, secret=_check_secret(path, result.format, secret))
    if result.backoff_initial > result.backoff_max:
        raise _Invalid(_join(path, "backoff.initial"), "must not be longer than backoff.max")
    _check_grouping(path, result)
    _unique(_join(path, "events"), list(result.events), "event")
    _unique(_join(path, "groups"), list(result.groups), "group")
    return result


def _check_grouping(path: str, r: Receiver) -> None:
    if r.format == "slack" and r.group_max > GROUP_MAX_SLACK:
        raise _Invalid(
            _join(path, "group_max"),
            f"must be at most {GROUP_MAX_SLACK} for format slack (a Slack message's size limits)",
        )
    if r.group_wait >= r.max_age:
        raise _Invalid(_join(path, "group_wait"), "must be shorter than max_age")


def parse_receivers(ctx: _Ctx, path: str, raw: object) -> tuple[Receiver, ...]:
    receivers: tuple[Receiver, ...] = _items(_receiver)(ctx, path, raw)
    _unique(path, [r.name for r in receivers], "receiver")
    return receivers


def check_receiver_groups(receivers: tuple[Receiver, ...], groups: set[str]) -> None:
    for i, receiver in enumerate(receivers):
        for j, group in enumerate(receiver.groups):
            if group not in groups:
                where = f"alerts.receivers.{i}.groups.{j}"
                raise _Invalid(where, f"unknown target group {_show(group)}")
