"""Who may use the listener: basic auth (exporter-toolkit's rules), the write rule, CSRF.

- **Basic auth.** With `basic_auth_users` in the web config every path needs a valid user —
  /metrics and /-/healthy too, as exporter-toolkit does — else 401 with `WWW-Authenticate:
  Basic`. bcrypt costs ~100 ms a check, so a verified (user, hash, password) is remembered by an
  HMAC of the three under a per-process key (never the password itself), failures too, in a
  bounded cache; bcrypt runs in one thread of its own (exporter-toolkit serialises it with a
  mutex for the same reason), never on the event loop and never in the store's threads. An
  unknown user is checked against a fixed hash, so timing does not tell which users exist.
  Failures are logged as one throttled line (`listener.ProblemLog`).
- **The write rule** (`writer`): every state-changing request needs an authenticated user when
  users are configured; without users, it is accepted only from a loopback peer, addressed to
  a loopback name (Host: an address or localhost, against DNS rebinding).
- **CSRF.** A request that comes from a browser (it has `Origin`, `Sec-Fetch-Site` or `Cookie`)
  must also carry `csrf_token` (form field or `X-CSRF-Token` header) and, if it has an Origin,
  one equal to the listener's own scheme://host. The token is an HMAC of the user under a
  per-process random key: nothing to store, no cookie (a cookie would itself be ambient
  authority), bound to the user, and useless to a page on another origin, which cannot read
  ours. A restart changes the key: a form left open across it is refused once, with a line
  saying to reload the page.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import bcrypt
from aiohttp import hdrs, web

from rblwatch.webconfig import RateLimit, WebConfigWatch, WebSecurity

# request keys (aiohttp warns about plain strings): `request[USER]` is the authenticated user,
# "" when no users are configured; SECURITY the WebSecurity the request was served under
USER = web.RequestKey("rblwatch.user", str)
SECURITY = web.RequestKey("rblwatch.web_security", WebSecurity)
_FORM_TOKEN = web.RequestKey("rblwatch.csrf_form", str)  # the csrf_token field, read in advance
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
CACHE_SIZE = 256  # remembered (user, hash, password) checks; exporter-toolkit keeps 100
# the hash an unknown user is checked against (cost 10, like most operators' hashes)
_DECOY = b"$2b$10$6i.C3gjQpALaGqEskNIkqO56dBor0AzhbF8MXxCqseVXHgRlo9p2q"
_SECRET = secrets.token_bytes(32)  # per process: CSRF tokens and cache keys
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Report = Callable[[str, str], None]  # (problem, line): `listener.Guard.report`


log = logging.getLogger("rblwatch.web")


def log_only(problem: str, line: str) -> None:
    log.warning("%s", line)


class Authenticator:
    """bcrypt checks, cached, in a thread of their own."""

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self.cache: OrderedDict[bytes, bool] = OrderedDict()
        self.cache_size = cache_size
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rblwatch-bcrypt")

    async def check(self, users: Mapping[str, str], user: str, password: str) -> bool:
        hashed = users.get(user)
        known = hashed is not None
        target = hashed.encode() if hashed is not None else _DECOY
        key = hmac.digest(_SECRET, b"\0".join((user.encode(), target, password.encode())), "sha256")
        ok = self.cache.get(key)
        if ok is None:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(self._pool, _checkpw, password.encode(), target)
            self.cache[key] = ok
            if len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        else:
            self.cache.move_to_end(key)
        return ok and known

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _checkpw(password: bytes, hashed: bytes) -> bool:
    """bcrypt's check as Go's (exporter-toolkit's) does it: only the first 72 bytes of a
    password count (bcrypt 5 raises on more; a peer's password must not be a 500), and a hash
    this bcrypt cannot read matches nothing."""
    try:
        return bcrypt.checkpw(password[:72], hashed)
    except ValueError:
        return False


class _Bucket:
    """exporter-toolkit's rate limit (Go's rate.Limiter): `burst` tokens, one back per interval."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.limit = RateLimit()
        self.tokens = 0.0
        self.at = clock()

    def allow(self, limit: RateLimit) -> bool:
        if not limit.interval:
            return True
        now = self.clock()
        if limit != self.limit:
            self.limit, self.tokens, self.at = limit, float(limit.burst), now
        self.tokens = min(float(limit.burst), self.tokens + (now - self.at) / limit.interval)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, password = decoded.partition(":")
    return (user, password) if colon else None


def _peer(request: web.Request) -> str:
    return request.remote or "?"


def _shown(user: str) -> str:
    return repr(user[:40])  # a peer's bytes: short, and quoted so they cannot fake a log line


def _unauthorized() -> web.HTTPUnauthorized:
    return web.HTTPUnauthorized(text="401 Unauthorized\n", headers={hdrs.WWW_AUTHENTICATE: "Basic"})


def install(app: web.Application, watch: WebConfigWatch | None, report: Report = log_only) -> None:
    """Put the middleware and the extra headers on `app` (before it starts)."""
    auth = Authenticator()
    app.middlewares.append(middleware(watch, auth, report))
    app.on_response_prepare.append(extra_headers(watch))

    async def close(app: web.Application) -> None:
        auth.close()

    app.on_cleanup.append(close)


def middleware(watch: WebConfigWatch | None, auth: Authenticator, report: Report) -> Any:
    """The aiohttp middleware: rate limit, basic auth, client SANs, and the CSRF field read in
    advance for `writer` (which cannot await). `watch` None: no web config file."""
    bucket = _Bucket()
    empty = WebSecurity()

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        security = watch.current() if watch is not None else empty
        request[SECURITY] = security
        if not bucket.allow(security.rate_limit):
            raise web.HTTPTooManyRequests(text="429 Too Many Requests\n")
        request[USER] = ""
        _check_sans(request, security, report)
        if security.users:
            request[USER] = await _authenticate(request, security, auth, report)
        if request.method == "POST" and request.content_type in _FORMS:
            try:
                form = await request.post()
            except (ValueError, LookupError) as e:  # a peer's bytes: no boundary, bad charset…
                report("malformed form", f"web: 400 for {_peer(request)}: malformed form")
                raise web.HTTPBadRequest(text=f"malformed form: {str(e)[:80]}\n") from None
            token = form.get(CSRF_FIELD)
            request[_FORM_TOKEN] = token if isinstance(token, str) else ""
        return await handler(request)

    return guard


async def _authenticate(
    request: web.Request, security: WebSecurity, auth: Authenticator, report: Report
) -> str:
    given = _credentials(request)
    if given is None:  # a browser's first request, or a scraper not yet configured: not logged
        raise _unauthorized()
    user, password = given
    if await auth.check(security.users, user, password):
        return user
    why = "wrong password" if user in security.users else "no such user"
    report("basic auth refused", f"web: 401 for {_peer(request)}: {why} for user {_shown(user)}")
    raise _unauthorized()


def _check_sans(request: web.Request, security: WebSecurity, report: Report) -> None:
    """`client_allowed_sans`: the verified client certificate must carry one of them."""
    allowed = security.tls.client_allowed_sans if security.tls is not None else ()
    if not allowed:
        return
    cert = request.transport.get_extra_info("peercert") if request.transport else None
    sans = {value for _, value in (cert or {}).get("subjectAltName", ())}
    if sans.isdisjoint(allowed):
        report("client SAN refused", f"web: 403 for {_peer(request)}: no allowed SAN")
        raise web.HTTPForbidden(text="client certificate not allowed (client_allowed_sans)\n")


def extra_headers(watch: WebConfigWatch | None) -> Callable[[web.Request, Any], Awaitable[None]]:
    """The `on_response_prepare` signal adding `http_server_config.headers` to every answer
    (errors included, as exporter-toolkit sets them before anything else)."""

    async def add(request: web.Request, response: Any) -> None:
        security = request.get(SECURITY)
        if security is None and watch is not None:
            security = watch.security
        if security is not None:
            response.headers.update(security.http.headers)

    return add


# --- the write rule and CSRF -------------------------------------------------------------------


def csrf_token(request: web.Request) -> str:
    """The token a form served to this request's user must send back (`csrf_token` field)."""
    user: str = request.get(USER, "")
    return hmac.new(_SECRET, b"csrf\0" + user.encode(), hashlib.sha256).hexdigest()


def _is_browser(request: web.Request) -> bool:
    headers = request.headers
    return any(h in headers for h in (hdrs.ORIGIN, "Sec-Fetch-Site", hdrs.COOKIE))


def _refuse(line: str) -> web.HTTPForbidden:
    return web.HTTPForbidden(text=line + "\n")


def _check_csrf(request: web.Request) -> None:
    origin = request.headers.get(hdrs.ORIGIN)
    own = f"{request.scheme}://{request.host}".lower()
    if origin is not None and origin.lower() != own:
        raise _refuse(f"refused: a cross-site request (Origin {origin[:80]!r} is not {own})")
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        raise _refuse("refused: a cross-site request (Sec-Fetch-Site)")
    given = request.headers.get(CSRF_HEADER) or request.get(_FORM_TOKEN) or ""
    if not hmac.compare_digest(given.encode(), csrf_token(request).encode()):
        raise _refuse(
            "refused: missing or stale csrf_token (reload the page and submit again)"
            if given
            else "refused: a browser request without csrf_token"
        )


def _loopback(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address((request.remote or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def _loopback_host(request: web.Request) -> bool:
    """Whether the request's Host names this machine's loopback (an address or localhost)."""
    given = request.headers.get(hdrs.HOST)
    if given is None:  # HTTP/1.0 without Host: no browser (aiohttp's `host` would be our FQDN)
        return True
    host = given.strip().lower()
    if host.startswith("["):
        name = host[1:].partition("]")[0]
    else:
        name = host.rpartition(":")[0] if host.count(":") == 1 else host
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.split("%")[0]).is_loopback
    except ValueError:
        return False


def writer(request: web.Request) -> str:
    """The acting user of a state-changing request, or an HTTP error (401/403, one line).

    With users configured: the authenticated user (the middleware has checked the password).
    Without: "" and only from a loopback peer. From a browser, also a valid CSRF token and a
    same-origin Origin.
    """
    security = request.get(SECURITY)
    users = security.users if security is not None else {}
    user: str = request.get(USER, "")
    if users and not user:
        raise _unauthorized()
    if not users and not _loopback(request):
        raise _refuse(
            "refused: changes are accepted from loopback only when no basic_auth_users are"
            " configured (see --web.config.file)"
        )
    if not users and not _loopback_host(request):
        # DNS rebinding: a page whose own name now resolves to 127.0.0.1 is same-origin with
        # the listener (its Origin matches Host), can read a form's token (one for everyone
        # without users) and posts from a loopback peer; only its Host gives it away
        raise _refuse(
            "refused: without basic_auth_users, changes must name the listener by a loopback"
            " address or localhost (Host)"
        )
    if _is_browser(request):
        _check_csrf(request)
    return user


__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SECURITY",
    "USER",
    "Authenticator",
    "csrf_token",
    "extra_headers",
    "install",
    "middleware",
    "writer",
]
