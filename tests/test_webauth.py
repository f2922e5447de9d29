"""The listener exposed: HTTPS with the web config's certificate, basic auth, the write rule
and CSRF — over real TLS connections to a real listener on 127.0.0.1, and `rblwatch run
--web.config.file` end to end."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request
from multidict import CIMultiDict

from rblwatch import web, webauth
from rblwatch.listener import Limits
from rblwatch.metrics import build_registry
from rblwatch.runtime import ReloadResult, Runtime
from rblwatch.webconfig import CHECK_INTERVAL, WebConfigWatch
from tests.daemon import config_text, free_tcp_port, wait_until
from tests.tlscerts import Pki, bcrypt_hash, make_pki
from tests.webstate import make_runtime

PASSWORD = "wonderland"
ALICE = bcrypt_hash(PASSWORD)
BOB = bcrypt_hash("builder")
AUTH = ("alice", PASSWORD)
Credentials = tuple[str, str]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    return make_runtime(tmp_path)


def web_config(tmp_path: Path, pki: Pki, extra: str = "", *, users: bool = True) -> Path:
    text = f"tls_server_config:\n  cert_file: {pki.cert}\n  key_file: {pki.key}\n{extra}"
    if users:
        text += f"basic_auth_users:\n  alice: '{ALICE}'\n  bob: '{BOB}'\n"
    path = tmp_path / "web.yml"
    path.write_text(text)
    return path


def basic(auth: Credentials | None) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(*auth)} if auth else {}


def client_context(pki: Pki, *, client_cert: bool = False) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if client_cert:
        ctx.load_cert_chain(pki.client_cert, pki.client_key)
    return ctx


class Client:
    """HTTPS requests to the listener on `port`, the server certificate verified."""

    def __init__(self, session: aiohttp.ClientSession, port: int, ctx: ssl.SSLContext) -> None:
        self.session, self.port, self.ctx = session, port, ctx
        self.base = f"https://127.0.0.1:{port}"

    async def __call__(
        self,
        path: str,
        method: str = "GET",
        *,
        auth: Credentials | None = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> tuple[int, str, CIMultiDict[str]]:
        headers = {**(headers or {}), **basic(auth)}
        url = self.base + path
        async with self.session.request(method, url, ssl=self.ctx, headers=headers, **kw) as r:
            return r.status, await r.text(), CIMultiDict(r.headers)


def on_tls(
    runtime: Runtime,
    config: Path,
    pki: Pki,
    action: Callable[[Client], Awaitable[Any]],
    *,
    limits: Limits | None = None,
    clock: Callable[[], float] = time.monotonic,
    client_cert: bool = False,
) -> Any:
    async def main() -> Any:
        watch = WebConfigWatch(str(config), clock=clock)
        registry = build_registry(runtime)
        runner = await web.start(runtime, registry, "127.0.0.1", 0, limits=limits, security=watch)
        try:
            async with aiohttp.ClientSession() as session:
                client = Client(
                    session, runner.addresses[0][1], client_context(pki, client_cert=client_cert)
                )
                return await asyncio.wait_for(action(client), 20)
        finally:
            await runner.cleanup()

    return asyncio.run(main())


# --- TLS ---------------------------------------------------------------------------------------


def test_the_listener_serves_https_with_the_file_s_certificate(
    runtime: Runtime, tmp_path: Path, pki: Pki
) -> None:
    async def action(client: Client) -> tuple[int, str, bool]:
        status, text, _ = await client("/-/healthy")
        try:  # plain HTTP to the TLS port gets no answer
            async with client.session.get(f"http://127.0.0.1:{client.port}/-/healthy") as r:
                plain = r.status == 200
        except aiohttp.ClientError:
            plain = False
        return status, text, plain

    config = web_config(tmp_path, pki, users=False)
    assert on_tls(runtime, config, pki, action) == (200, "OK\n", False)


def test_a_handshake_that_never_completes_is_dropped_and_frees_its_slot(
    runtime: Runtime, tmp_path: Path, pki: Pki
) -> None:
    async def action(client: Client) -> tuple[float, int]:
        reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
        started = time.monotonic()
        writer.write(b"\x16\x03\x01")  # the first bytes of a ClientHello, and no more
        await asyncio.wait_for(reader.read(), 10)
        held = time.monotonic() - started
        writer.close()
        status, _, _ = await client("/-/healthy")
        return held, status

    limits = Limits(header_timeout=0.5, max_connections=1)
    config = web_config(tmp_path, pki, users=False)
    held, status = on_tls(runtime, config, pki, action, limits=limits)
    assert 0.3 < held < 5
    assert status == 200


def test_a_renewed_certificate_serves_the_next_connection(
    runtime: Runtime, tmp_path: Path, pki: Pki
) -> None:
    cert, key = tmp_path / "s.crt", tmp_path / "s.key"
    cert.write_bytes(pki.cert.read_bytes())
    key.write_bytes(pki.key.read_bytes())
    config = tmp_path / "web.yml"
    config.write_text("tls_server_config: {cert_file: s.crt, key_file: s.key}\n")
    renewed = make_pki(tmp_path / "renewed")
    now = [1000.0]

    async def served(port: int) -> bytes:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
        der: bytes = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        return der

    async def action(client: Client) -> tuple[bytes, bytes]:
        before = await served(client.port)
        cert.write_bytes(renewed.cert.read_bytes())
        key.write_bytes(renewed.key.read_bytes())
        now[0] += CHECK_INTERVAL
        return before, await served(client.port)

    before, after = on_tls(runtime, config, pki, action, clock=lambda: now[0])
    assert ssl.DER_cert_to_PEM_cert(before) == pki.cert.read_text()
    assert ssl.DER_cert_to_PEM_cert(after) == renewed.cert.read_text()


def test_a_client_certificate_is_required_and_verified_when_asked_for(
    runtime: Runtime, tmp_path: Path, pki: Pki
) -> None:
    extra = f"  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: {pki.ca}\n"
    config = web_config(tmp_path, pki, extra, users=False)

    async def without(client: Client) -> str:
        try:
            await client("/-/healthy")
        except aiohttp.ClientError as e:
            return type(e).__name__
        return "answered"

    async def healthy(client: Client) -> int:
        return (await client("/-/healthy"))[0]

    assert on_tls(runtime, config, pki, without) != "answered"
    assert on_tls(runtime, config, pki, healthy, client_cert=True) == 200
    config.write_text(
        config.read_text().replace(
            "  client_ca_file", "  client_allowed_sans: [x.test]\n  client_ca_file"
        )
    )
    assert on_tls(runtime, config, pki, healthy, client_cert=True) == 403
    config.write_text(config.read_text().replace("x.test", "scraper.test"))
    assert on_tls(runtime, config, pki, healthy, client_cert=True) == 200


# --- basic auth --------------------------------------------------------------------------------


def test_every_path_needs_a_user_when_users_are_configured(
    runtime: Runtime, tmp_path: Path, pki: Pki
) -> None:
    paths = ["/metrics", "/-/healthy", "/-/ready", "/", "/api/v1/status", "/nowhere"]

    async def action(client: Client) -> list[tuple[str, int, str | None]]:
        out = []
        for path in paths:
            status, _, headers = await client(path)
            out.append((path, status, headers.get("WWW-Authenticate")))
        return out

    assert on_tls(runtime, web_config(tmp_path, pki), pki, action) == [
        (p, 401, "Basic") for p in paths
    ]


def test_a_valid_user_is_served(runtime: Runtime, tmp_path: Path, pki: Pki) -> None:
    async def action(client: Client) -> list[int]:
        healthy = await client("/-/healthy", auth=AUTH)
        metrics = await client("/metrics", auth=("bob", "builder"))
        assert "rblwatch_" in metrics[1]
        return [healthy[0], metrics[0]]

    assert on_tls(runtime, web_config(tmp_path, pki), pki, action) == [200, 200]


def test_failures_are_401_and_one_throttled_log_line(
    runtime: Runtime, tmp_path: Path, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    async def action(client: Client) -> list[int]:
        wrong = ("alice", "guess")
        statuses = [(await client("/metrics", auth=wrong))[0] for _ in range(3)]
        statuses.append((await client("/metrics", auth=("mallory", "x")))[0])
        statuses.append((await client("/metrics", headers={"Authorization": "Basic !!"}))[0])
        return statuses

    with caplog.at_level(logging.WARNING, "rblwatch.web"):
        assert on_tls(runtime, web_config(tmp_path, pki), pki, action) == [401] * 5
    lines = [r.getMessage() for r in caplog.records if r.name == "rblwatch.web"]
    assert lines[0] == "web: 401 for 127.0.0.1: wrong password for user 'alice'"
    assert lines[1:] == ["web: 3 more like 'basic auth refused' in the last 1 s"]
    assert not any(r.exc_info for r in caplog.records)


def test_bcrypt_runs_once_per_credentials_and_never_on_the_event_loop(
    runtime: Runtime, tmp_path: Path, pki: Pki
) -> None:
    threads: list[str] = []
    real = webauth.bcrypt.checkpw

    def checkpw(password: bytes, hashed: bytes) -> bool:
        threads.append(threading.current_thread().name)
        return real(password, hashed)

    async def action(client: Client) -> list[int]:
        return [(await client("/-/healthy", auth=AUTH))[0] for _ in range(5)]

    with mock.patch.object(webauth.bcrypt, "checkpw", checkpw):
        assert on_tls(runtime, web_config(tmp_path, pki), pki, action) == [200] * 5
    assert len(threads) == 1
    assert threads[0].startswith("rblwatch-bcrypt")


def test_the_cache_is_keyed_by_a_keyed_hash_and_bounded() -> None:
    auth = webauth.Authenticator(cache_size=2)

    async def main() -> list[bool]:
        users = {"alice": ALICE}
        return [await auth.check(users, "alice", p) for p in (PASSWORD, "a", "b", PASSWORD)]

    assert asyncio.run(main()) == [True, False, False, True]
    assert len(auth.cache) == 2
    assert all(PASSWORD.encode() not in key for key in auth.cache)
    auth.close()


def test_the_file_s_headers_are_on_every_answer(runtime: Runtime, tmp_path: Path, pki: Pki) -> None:
    extra = (
        "http_server_config:\n  headers: {X-Frame-Options: deny, X-Content-Type-Options: nosniff}\n"
    )

    async def action(client: Client) -> list[tuple[int, str | None, str | None]]:
        out = []
        for auth in (None, AUTH):
            status, _, headers = await client("/-/healthy", auth=auth)
            out.append(
                (status, headers.get("X-Frame-Options"), headers.get("X-Content-Type-Options"))
            )
        return out

    config = web_config(tmp_path, pki, extra)
    assert on_tls(runtime, config, pki, action) == [
        (401, "deny", "nosniff"),
        (200, "deny", "nosniff"),
    ]


def test_the_rate_limit_answers_429_past_the_burst(
    runtime: Runtime, tmp_path: Path, pki: Pki
) -> None:
    async def action(client: Client) -> list[int]:
        return [(await client("/-/healthy"))[0] for _ in range(3)]

    config = web_config(tmp_path, pki, "rate_limit: {interval: 1m, burst: 2}\n", users=False)
    assert on_tls(runtime, config, pki, action) == [200, 200, 429]


# --- the write rule and CSRF -------------------------------------------------------------------


def token_for(user: str) -> str:
    request = make_mocked_request("GET", "/")
    request[webauth.USER] = user
    return webauth.csrf_token(request)


def reloads(runtime: Runtime) -> list[int]:
    calls: list[int] = []

    async def reload() -> ReloadResult:
        calls.append(1)
        return ReloadResult(True, "reloaded")

    runtime.reload = reload
    return calls


def test_a_reload_needs_a_user_when_users_are_configured(
    runtime: Runtime, tmp_path: Path, pki: Pki
) -> None:
    calls = reloads(runtime)

    async def action(client: Client) -> list[tuple[int, str]]:
        anonymous = await client("/-/reload", "POST")
        curl = await client("/-/reload", "POST", auth=AUTH)
        return [anonymous[:2], curl[:2]]

    assert on_tls(runtime, web_config(tmp_path, pki), pki, action) == [
        (401, "401 Unauthorized\n"),
        (200, "reloaded\n"),
    ]
    assert calls == [1]


def test_a_browser_post_needs_the_user_s_token_and_its_own_origin(
    runtime: Runtime, tmp_path: Path, pki: Pki
) -> None:
    calls = reloads(runtime)

    async def action(client: Client) -> list[tuple[int, str]]:
        own = {"Origin": client.base}
        token = token_for("alice")
        tries = [
            {"headers": {**own, "X-CSRF-Token": token}},
            {"headers": own, "data": {"csrf_token": token}},
            {"headers": own},
            {"headers": {**own, "X-CSRF-Token": token_for("bob")}},
            {"headers": {"Origin": "https://evil.example", "X-CSRF-Token": token}},
            {"headers": {"Sec-Fetch-Site": "cross-site", "X-CSRF-Token": token}},
            {"headers": {"Cookie": "a=b"}},
            {"headers": {"Origin": "null", "X-CSRF-Token": token}},
        ]
        out = []
        for kw in tries:
            status, text, _ = await client("/-/reload", "POST", auth=AUTH, **kw)
            out.append((status, text))
        return out

    answers = on_tls(runtime, web_config(tmp_path, pki), pki, action)
    assert [s for s, _ in answers] == [200, 200, 403, 403, 403, 403, 403, 403]
    assert answers[2][1] == "refused: a browser request without csrf_token\n"
    assert (
        answers[3][1] == "refused: missing or stale csrf_token (reload the page and submit again)\n"
    )
    assert answers[4][1].startswith("refused: a cross-site request (Origin 'https://evil.example'")
    assert all(text.count("\n") == 1 for _, text in answers)
    assert calls == [1, 1]


def mocked(remote: str, headers: dict[str, str] | None = None, user: str | None = None) -> Any:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (remote, 40000) if name == "peername" else default
    )
    request = make_mocked_request("POST", "/-/reload", headers=headers, transport=transport)
    if user is not None:
        request[webauth.USER] = user
        request[webauth.SECURITY] = webauth.WebSecurity(users={user: ALICE})
    return request


def test_without_users_writes_are_accepted_from_loopback_only() -> None:
    assert webauth.writer(mocked("127.0.0.1")) == ""
    assert webauth.writer(mocked("::1")) == ""
    with pytest.raises(aiohttp.web.HTTPForbidden) as info:
        webauth.writer(mocked("192.0.2.7"))
    assert info.value.text == (
        "refused: changes are accepted from loopback only when no basic_auth_users are"
        " configured (see --web.config.file)\n"
    )


def test_with_users_a_write_from_anywhere_carries_its_user() -> None:
    assert webauth.writer(mocked("192.0.2.7", user="alice")) == "alice"
    request = mocked("192.0.2.7", user="alice")
    request[webauth.USER] = ""
    with pytest.raises(aiohttp.web.HTTPUnauthorized):
        webauth.writer(request)


def test_a_cross_site_post_to_a_loopback_listener_without_users_is_refused(
    runtime: Runtime,
) -> None:
    # the plain-HTTP default listener: a page the operator opens must not reload the daemon
    calls = reloads(runtime)

    async def main() -> list[int]:
        runner = await web.start(runtime, build_registry(runtime), "127.0.0.1", 0)
        base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with aiohttp.ClientSession() as session:
                out = []
                for headers in (
                    {"Origin": "http://evil.example"},
                    {"Origin": base, "X-CSRF-Token": token_for("")},
                ):
                    async with session.post(base + "/-/reload", headers=headers) as r:
                        out.append(r.status)
                return out
        finally:
            await runner.cleanup()

    assert asyncio.run(main()) == [403, 200]
    assert calls == [1]


def test_csrf_tokens_differ_per_user_and_are_stable() -> None:
    assert token_for("alice") == token_for("alice") != token_for("bob")


# --- end to end --------------------------------------------------------------------------------


def test_rblwatch_run_serves_metrics_over_tls_with_basic_auth(tmp_path: Path, pki: Pki) -> None:
    port = free_tcp_port()
    cfg = tmp_path / "rblwatch.yml"
    cfg.write_text(config_text(dns_port=free_tcp_port(), web_port=port, store=tmp_path / "s.db"))
    web_yml = web_config(tmp_path, pki)
    log = open(tmp_path / "daemon.log", "wb")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        [sys.executable, "-m", "rblwatch", "run", "--config.file", str(cfg),
         "--web.config.file", str(web_yml)],
        stdout=log, stderr=log,
    )  # fmt: skip
    log.close()
    ctx = client_context(pki)

    def get(path: str, auth: Credentials | None = AUTH) -> tuple[int, str]:
        async def main() -> tuple[int, str]:
            url = f"https://127.0.0.1:{port}{path}"
            async with (
                aiohttp.ClientSession() as s,
                s.get(url, ssl=ctx, headers=basic(auth)) as r,
            ):
                return r.status, await r.text()

        try:
            return asyncio.run(main())
        except aiohttp.ClientError:
            assert proc.poll() is None, (tmp_path / "daemon.log").read_text()
            return 0, ""

    try:
        wait_until("the daemon to be ready over TLS", lambda: get("/-/ready")[0] == 200, 30)
        status, metrics = get("/metrics")
        assert status == 200
        assert "# TYPE rblwatch_" in metrics
        assert get("/metrics", auth=None)[0] == 401
        assert get("/-/healthy", auth=None)[0] == 401
        web_yml.write_text(web_yml.read_text().replace("  bob:", "  carol:"))
        proc.send_signal(signal.SIGHUP)
        carol = ("carol", "builder")
        wait_until("carol to be let in after SIGHUP", lambda: get("/-/healthy", carol)[0] == 200)
        assert get("/-/healthy", ("bob", "builder"))[0] == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log_text = (tmp_path / "daemon.log").read_text()
    assert "(TLS, 2 basic-auth user(s))" in log_text
    # (cycles cut short by SIGTERM may log their cancellation: not the listener's doing)
    assert "Error handling request" not in log_text
    assert not any(m in log_text for m in ("webauth.py", "webconfig.py", "listener.py", "SSL"))
