"""Review of issue 11: hostile requests to the listener with basic auth configured."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from rblwatch import web
from rblwatch.metrics import build_registry
from rblwatch.runtime import Runtime
from rblwatch.webconfig import WebConfigWatch
from tests.tlscerts import bcrypt_hash
from tests.webstate import make_runtime

PASSWORD = "wonderland"


@pytest.fixture
def runtime(tmp_path: Path) -> Runtime:
    return make_runtime(tmp_path)


def serve(runtime: Runtime, config: Path, action: Any) -> Any:
    async def main() -> Any:
        watch = WebConfigWatch(str(config))
        runner = await web.start(runtime, build_registry(runtime), "127.0.0.1", 0, security=watch)
        try:
            async with aiohttp.ClientSession() as session:
                base = f"http://127.0.0.1:{runner.addresses[0][1]}"
                return await asyncio.wait_for(action(session, base), 20)
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def users_file(tmp_path: Path, hashed: str) -> Path:
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users:\n  alice: '{hashed}'\n")
    return path


def header(user: str, password: str) -> dict[str, str]:
    raw = f"{user}:{password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def test_a_password_over_72_bytes_is_a_401_not_a_500(runtime: Runtime, tmp_path: Path) -> None:
    config = users_file(tmp_path, bcrypt_hash(PASSWORD))

    async def action(session: aiohttp.ClientSession, base: str) -> list[int]:
        out = []
        for user in ("alice", "mallory"):
            async with session.get(base + "/metrics", headers=header(user, "x" * 100)) as r:
                out.append(r.status)
        return out

    assert serve(runtime, config, action) == [401, 401]


def test_a_hash_bcrypt_cannot_check_is_a_config_error_not_a_500_per_login() -> None:
    from rblwatch.config import ConfigError
    from rblwatch.webconfig import parse_web_config

    good = bcrypt_hash(PASSWORD)
    ancient = "$2$" + good[4:]  # Python's bcrypt: "Invalid salt" at every check
    with pytest.raises(ConfigError, match=r"basic_auth_users\.alice"):
        parse_web_config({"basic_auth_users": {"alice": ancient}}, "web.yml")


@pytest.mark.parametrize(
    ("ctype", "body"),
    [
        ("multipart/form-data", b"garbage"),
        ("multipart/form-data; boundary=zz", b"garbage without a boundary"),
        (
            "multipart/form-data; boundary=zz",
            b"--zz\r\nContent-Disposition: form-data\r\n\r\nx\r\n--zz--\r\n",
        ),
        ("application/x-www-form-urlencoded; charset=nonesuch", b"csrf_token=%ff%fe"),
        ("application/x-www-form-urlencoded", b"csrf_token=%ff%fe&a"),
    ],
)
def test_a_malformed_form_is_a_4xx_not_a_500(
    runtime: Runtime, tmp_path: Path, ctype: str, body: bytes
) -> None:
    config = tmp_path / "web.yml"
    config.write_text("{}\n")

    async def action(session: aiohttp.ClientSession, base: str) -> list[int]:
        out = []
        for path in ("/-/reload", "/api/v1/acks", "/nonesuch"):
            async with session.post(base + path, data=body, headers={"Content-Type": ctype}) as r:
                out.append(r.status)
        return out

    statuses = serve(runtime, config, action)
    assert all(400 <= s < 500 or s in {200, 503} for s in statuses), statuses


def test_without_users_a_write_through_a_rebound_name_is_refused(
    runtime: Runtime, tmp_path: Path
) -> None:
    """DNS rebinding: a page of evil.example whose name now resolves to 127.0.0.1 is
    same-origin with the listener (Origin equals Host), reads the token from a form (without
    users it is one token for all) and posts from a loopback peer."""
    from rblwatch import webauth

    config = tmp_path / "web.yml"
    config.write_text("{}\n")

    async def action(session: aiohttp.ClientSession, base: str) -> list[int]:
        port = base.rsplit(":", 1)[1]
        token = webauth.hmac.new(webauth._SECRET, b"csrf\0", webauth.hashlib.sha256).hexdigest()
        out = []
        for host in (f"evil.example:{port}", f"127.0.0.1:{port}", f"localhost:{port}"):
            headers = {
                "Host": host,
                "Origin": f"http://{host}",
                "Sec-Fetch-Site": "same-origin",
                "X-CSRF-Token": token,
            }
            async with session.post(base + "/-/reload", headers=headers) as r:
                out.append(r.status)
        return out

    rebound, ip, name = serve(runtime, config, action)
    assert rebound == 403
    assert ip != 403 and name != 403
