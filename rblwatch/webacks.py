"""The API of working a listing (issue 11 part 2): acks, delisting requests and notes over HTTP.

Routes (added to the listener's application by `add_routes`):

- `GET /api/v1/acks[?target=&list=]`: the stored acks, expired ones too (`active` says which).
- `POST /api/v1/acks` (target, list, note, until): acknowledge a listing.
- `POST /api/v1/acks/delete` (target, list): remove its ack.
- `POST /api/v1/delisting` (target, list, note): mark it "delisting requested".
- `POST /api/v1/notes` (target, text) and `GET /api/v1/notes?target=`: notes on a target.

A POST takes a JSON object or a form (`application/x-www-form-urlencoded` or multipart), so a
browser form works without JavaScript. A form that names where it came from (`return_to`: a
path on the console, `/target/…` or `/listings…`, never another site) ends there again: 303
See Other once written, and a small HTML page naming the problem when refused (the console's
forms send it, with their `csrf_token`); anything else gets JSON.

Every POST first asks the listener's write rule (`webauth.writer`) who is acting: it
refuses (401/403, one line) what it does not accept — without basic-auth users, anything but
a loopback peer; a browser's request without its CSRF token or from another site — and
returns the authenticated user's name, or "" when users are not configured; then the body's
`by` names the actor, else "api". Answers: 200 with the object written, 400 for a bad
request, 409 for a pair that is not listed (or a target never looked up), 503 when the store
is away.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from rblwatch import __version__, webauth
from rblwatch.config import parse_duration
from rblwatch.console.render import CSP, form_problem
from rblwatch.model import Ack, Note
from rblwatch.runtime import Runtime
from rblwatch.store import Refused
from rblwatch.targets import TargetError, canonical_target
from rblwatch.views.acks import acks_json, expiry, note_json, notes_json
from rblwatch.views.status import ack_json, unknown_list

TEXT_MAX = 4000  # characters of a note: a note, not a document
Writer = Callable[[web.Request], str]
RETURN_FIELD = "return_to"
RETURN_PATHS = ("/target/", "/listings")  # where a form may send the browser back to
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
# fields a browser form sends besides the API's own: read by webauth and by `_answered`
_FORM_ONLY = frozenset({webauth.CSRF_FIELD, RETURN_FIELD})


class _BadRequest(Exception):
    pass


def _json(data: Mapping[str, object], status: int = 200) -> web.Response:
    return web.Response(
        status=status, text=json.dumps(data) + "\n", content_type="application/json"
    )


def _error(message: str, status: int) -> web.Response:
    return _json({"error": message}, status)


# -- request bodies -----------------------------------------------------------------------------


async def _fields(request: web.Request, allowed: frozenset[str]) -> dict[str, str]:
    """The body's fields (a JSON object or a form), each a string; _BadRequest otherwise."""
    raw: Mapping[str, Any]
    if request.content_type == "application/json":
        try:
            doc = json.loads(await request.text())
        except ValueError:
            raise _BadRequest("body: not JSON") from None
        if not isinstance(doc, dict):
            raise _BadRequest("body: a JSON object is expected")
        raw = doc
    else:
        raw = await request.post()
    if request.content_type in _FORMS:
        allowed = allowed | _FORM_ONLY
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _BadRequest(f"unknown field {unknown[0]!r} (use {', '.join(sorted(allowed))})")
    out: dict[str, str] = {}
    for key, value in raw.items():
        if value is None or key in _FORM_ONLY:
            continue
        if not isinstance(value, str):
            raise _BadRequest(f"{key}: a string is expected")
        out[key] = value.strip()
    return out


def _target(text: str | None) -> str:
    if not text:
        raise _BadRequest("target: missing")
    try:
        return canonical_target(text)
    except TargetError as e:
        raise _BadRequest(f"target: {e}") from None


def _text(fields: Mapping[str, str], key: str) -> str:
    value = fields.get(key, "")
    if len(value) > TEXT_MAX:
        raise _BadRequest(f"{key}: longer than {TEXT_MAX} characters")
    return value


def _until(text: str | None, now: float) -> float | None:
    """`until` (absent or "": none); see `views.acks.expiry`."""
    if not text:
        return None
    try:
        return expiry(text, now, parse_duration)
    except ValueError as e:
        raise _BadRequest(f"until {text}: {e}") from None


_PAIR = frozenset({"target", "list", "by"})


class _Acks:
    """The handlers, over the daemon's runtime (its config and store) and a `writer`."""

    def __init__(self, runtime: Runtime, who: Writer) -> None:
        self.runtime = runtime
        self.who = who

    def _list(self, name: str | None) -> str:
        if not name:
            raise _BadRequest("list: missing")
        config = self.runtime.config
        known = [lst.name for lst in config.subjects] + [h.name for h in config.hygiene]
        problem = unknown_list(name, known)
        if problem is not None:
            raise _BadRequest(f"list: {problem}")
        return name

    async def _posted(
        self, request: web.Request, allowed: frozenset[str]
    ) -> tuple[dict[str, str], str]:
        user = self.who(request)  # first: a refused request is not even read
        await _return_to(request)  # then a bad return_to, before anything is written
        fields = await _fields(request, allowed)
        return fields, user or fields.get("by") or "api"

    async def post_ack(self, request: web.Request) -> web.StreamResponse:
        fields, by = await self._posted(request, _PAIR | {"note", "until"})
        target, list_name = _target(fields.get("target")), self._list(fields.get("list"))
        now = time.time()
        until = _until(fields.get("until"), now)
        ack = Ack(target, list_name, by, now, _text(fields, "note"), until)
        event = await self.runtime.db.set_ack(ack)
        return _json({"ack": ack_json(event.ack, now), "event_id": event.id})

    async def delete_ack(self, request: web.Request) -> web.StreamResponse:
        fields, by = await self._posted(request, _PAIR)
        target, list_name = _target(fields.get("target")), self._list(fields.get("list"))
        event = await self.runtime.db.clear_ack(target, list_name, by, time.time())
        return _json({"removed": event is not None, "event_id": event.id if event else None})

    async def post_delisting(self, request: web.Request) -> web.StreamResponse:
        fields, by = await self._posted(request, _PAIR | {"note"})
        target, list_name = _target(fields.get("target")), self._list(fields.get("list"))
        now = time.time()
        event = await self.runtime.db.request_delisting(
            target, list_name, by, _text(fields, "note"), now
        )
        return _json({"ack": ack_json(event.ack, now), "event_id": event.id})

    async def post_note(self, request: web.Request) -> web.StreamResponse:
        fields, by = await self._posted(request, frozenset({"target", "text", "by"}))
        target, text = _target(fields.get("target")), _text(fields, "text")
        if not text:
            raise _BadRequest("text: missing")
        note = await self.runtime.db.add_note(Note(target, by, time.time(), text))
        return _json({"note": note_json(note)})

    async def get_acks(self, request: web.Request) -> web.StreamResponse:
        query = _query(request, frozenset({"target", "list"}))
        target = _target(query["target"]) if "target" in query else None
        list_name = self._list(query["list"]) if "list" in query else None
        found = await self.runtime.db.acks(list_name, target)
        return _json(acks_json(found, time.time()))

    async def get_notes(self, request: web.Request) -> web.StreamResponse:
        query = _query(request, frozenset({"target"}))
        notes = await self.runtime.db.notes(_target(query.get("target")))
        return _json(notes_json(notes))


def _query(request: web.Request, allowed: frozenset[str]) -> dict[str, str]:
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        raise _BadRequest(f"unknown parameter {unknown[0]!r} (use {', '.join(sorted(allowed))})")
    out = {}
    for key in request.query:
        values = request.query.getall(key)
        if len(values) > 1:
            raise _BadRequest(f"{key}: given {len(values)} times (give it once)")
        out[key] = values[0]
    return out


Handler = Callable[[web.Request], Any]


def safe_return(path: str) -> bool:
    """Whether a form's `return_to` is a path of the console's own a browser may be sent
    back to: `/target/…` or `/listings…`, no scheme, no host, no backslash (which browsers
    read as a slash: `/\\evil.example`), nothing unprintable: never an open redirect."""
    if not path.startswith(RETURN_PATHS) or not path.isprintable() or "\\" in path:
        return False
    # "/listingsX" is not the listings page ("/listings.evil" neither)
    return not path.startswith("/listings") or path[len("/listings") :][:1] in ("", "?", "#")


async def _return_to(request: web.Request) -> str | None:
    """The form's `return_to` (None: not a form, or it names none); _BadRequest if it names
    a place a browser must not be sent."""
    if request.method != "POST" or request.content_type not in _FORMS:
        return None
    value = (await request.post()).get(RETURN_FIELD)  # read once by aiohttp, then kept
    if not isinstance(value, str) or not value:
        return None
    if not safe_return(value):
        raise _BadRequest(f"{RETURN_FIELD}: not a page of this console (/target/… or /listings)")
    return value


def _problem(message: str, status: int, back: str | None, version: str) -> web.Response:
    """A refused form post's answer: an HTML page for a browser, one line of JSON otherwise."""
    if back is None:
        return _error(message, status)
    page = form_problem(message, back, version)
    response = web.Response(text=page, status=status, content_type="text/html")
    response.headers["Content-Security-Policy"] = CSP
    return response


def _answered(handler: Callable[[web.Request], Any], runtime: Runtime) -> Handler:
    """A handler whose bad requests are 400 and refused writes 409, each one line of JSON,
    or for a console form (`return_to`) a 303 back to its page and a page naming a problem."""

    async def run(request: web.Request) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            back = await _return_to(request)
        except (_BadRequest, Refused) as e:
            status = 400 if isinstance(e, _BadRequest) else 409
            version = runtime.version or __version__
            return _problem(str(e), status, await _back(request), version)
        if back is not None and response.status == 200:
            raise web.HTTPSeeOther(back)
        return response

    return run


async def _back(request: web.Request) -> str | None:
    """Where a refused form's problem page links back to (None: answer in JSON)."""
    try:
        return await _return_to(request)
    except _BadRequest:
        return "/listings"  # a bad return_to: still a browser's form, shown as a page


def add_routes(app: web.Application, runtime: Runtime, who: Writer = webauth.writer) -> None:
    """Add the routes of the module docstring to the listener's application."""
    h = _Acks(runtime, who)
    app.router.add_get("/api/v1/acks", _answered(h.get_acks, runtime))
    app.router.add_post("/api/v1/acks", _answered(h.post_ack, runtime))
    app.router.add_post("/api/v1/acks/delete", _answered(h.delete_ack, runtime))
    app.router.add_post("/api/v1/delisting", _answered(h.post_delisting, runtime))
    app.router.add_get("/api/v1/notes", _answered(h.get_notes, runtime))
    app.router.add_post("/api/v1/notes", _answered(h.post_note, runtime))


__all__ = ["RETURN_FIELD", "RETURN_PATHS", "TEXT_MAX", "Writer", "add_routes", "safe_return"]
