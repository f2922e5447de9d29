"""Alert payloads: what one event looks like to each kind of receiver (SPEC §12).

Pure: no sockets, no clock, no config files. Every format has one shape (`base.AlertFormat`:
the request for an event, whether it signs, whether it re-sends what fires, and those
requests) and lives in its own module: `standard_webhooks` (`format: json`), `slack`,
`alertmanager`. `registry.FORMATS` maps each `format:` name to its format; the sender asks it
rather than testing names. The names below are re-exported so callers need not know which
module a helper lives in.
"""

from __future__ import annotations

from rblwatch.alerts.formats.alertmanager import (
    ALERTMANAGER_BATCH,
    ALERTMANAGER_PATH,
    LISTED_ALERT,
    UNHEALTHY_ALERT,
    alertmanager_request,
    event_alert,
    firing_alerts,
    pair_alert,
    unhealthy_alert,
)
from rblwatch.alerts.formats.base import (
    AlertFormat,
    Context,
    Firing,
    Request,
    is_list_event,
    rfc3339,
    webhook_id,
)
from rblwatch.alerts.formats.registry import FORMATS, event_request, format_named
from rblwatch.alerts.formats.slack import MAX_TXT, slack_batch_body, slack_body, slack_request
from rblwatch.alerts.formats.standard_webhooks import (
    JSON_TYPES,
    batch_body,
    batch_id,
    json_batch_request,
    json_body,
    json_request,
    sign,
    signing_key,
)

__all__ = [
    "ALERTMANAGER_BATCH",
    "ALERTMANAGER_PATH",
    "FORMATS",
    "JSON_TYPES",
    "LISTED_ALERT",
    "MAX_TXT",
    "UNHEALTHY_ALERT",
    "AlertFormat",
    "Context",
    "Firing",
    "Request",
    "alertmanager_request",
    "batch_body",
    "batch_id",
    "event_alert",
    "event_request",
    "firing_alerts",
    "format_named",
    "is_list_event",
    "json_batch_request",
    "json_body",
    "json_request",
    "pair_alert",
    "rfc3339",
    "sign",
    "signing_key",
    "slack_batch_body",
    "slack_body",
    "slack_request",
    "unhealthy_alert",
    "webhook_id",
]
