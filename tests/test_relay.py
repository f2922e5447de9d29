"""bench/relay.c, the slow-network relay of bench/netbench.sh: delay and loss as configured.

Each test builds the relay with cc and runs it inside a private network namespace (unshare -n,
its own loopback) against a small echo server, with a few hundred DNS-shaped datagrams; the
namespace part is this file run as a script (`--in-namespace`). Needs root, as CI has: without
it the tests fail and say so, they never skip.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

RELAY_C = Path(__file__).resolve().parent.parent / "bench" / "relay.c"
HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> str:
    if os.geteuid() != 0:
        pytest.fail("the relay tests need root: they run in a network namespace (unshare -n)")
    for tool in ("cc", "unshare"):
        if shutil.which(tool) is None:
            pytest.fail(f"the relay tests need {tool!r} on PATH")
    out = tmp_path_factory.mktemp("relay") / "relay"
    subprocess.run(["cc", "-O2", "-Wall", "-Werror", "-o", str(out), str(RELAY_C)], check=True)
    return str(out)


def in_namespace(relay: str, **spec: object) -> dict[str, object]:
    """Run one exchange (see `exchange`) in a fresh network namespace; its findings."""
    args = [sys.executable, __file__, "--in-namespace", relay, json.dumps(spec)]
    proc = subprocess.run(
        ["unshare", "-n", "--", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, object] = json.loads(proc.stdout)
    return result


def test_relay_adds_the_delay_each_way(relay: str) -> None:
    got = in_namespace(relay, delay_ms=20, loss=0, n=200)
    rtts = got["rtts_ms"]
    assert isinstance(rtts, list)
    assert len(rtts) == 200  # no loss configured: every datagram comes back
    assert min(rtts) >= 40.0  # 20 ms on the way there and 20 ms back, never less
    assert statistics.median(rtts) < 40.0 + 20.0  # and not much more (a busy machine)
    stats = got["stats"]
    assert isinstance(stats, dict)
    assert (stats["delay_up_ms"], stats["delay_down_ms"]) == (20.0, 20.0)


def test_relay_loses_each_way_independently_and_repeatably(relay: str) -> None:
    a = in_namespace(relay, delay_ms=0, loss=0.2, n=400, seed=7)
    st = a["stats"]
    assert isinstance(st, dict)
    # every datagram is accounted for: relayed or lost, in each direction
    assert st["rx_client"] == 400
    assert st["lost_up"] + st["tx_upstream"] == 400
    assert st["rx_upstream"] == st["tx_upstream"]  # the echo server answers all it gets
    assert st["lost_down"] + st["tx_client"] == st["rx_upstream"]
    assert a["received"] == st["tx_client"]
    # 20% each way: 80 expected per direction, sd ~8; both directions lose
    assert 40 <= st["lost_up"] <= 120
    assert 25 <= st["lost_down"] <= 100
    assert st["full_up"] == st["full_down"] == st["send_errors"] == 0
    # the same seed loses the same datagrams; another seed others
    assert in_namespace(relay, delay_ms=0, loss=0.2, n=400, seed=7)["lost"] == a["lost"]
    assert in_namespace(relay, delay_ms=0, loss=0.2, n=400, seed=8)["lost"] != a["lost"]


def test_relay_without_loss_loses_nothing_and_counts_repeated_questions(relay: str) -> None:
    got = in_namespace(relay, delay_ms=1, loss=0, n=300, repeat_every=10)
    st = got["stats"]
    assert isinstance(st, dict)
    assert got["lost"] == []
    assert (st["lost_up"], st["lost_down"], st["tx_client"]) == (0, 0, 300)
    # every tenth datagram asks an earlier question again, under a new ID: a retransmission
    assert (st["repeats"], st["distinct"]) == (30, 270)


# --- inside the namespace ---------------------------------------------------------------------


def query(i: int, name: str) -> bytes:
    wire = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0) + wire + struct.pack("!HH", 1, 1)


def echo_server() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))

    def serve() -> None:
        while True:
            data, addr = sock.recvfrom(2048)
            sock.sendto(data, addr)

    threading.Thread(target=serve, daemon=True).start()
    port: int = sock.getsockname()[1]
    return port


def loopback_up() -> None:
    """`ip link set lo up`, without needing iproute2: SIOCSIFFLAGS on the namespace's lo."""
    siocsifflags, iff_up, iff_loopback, iff_running = 0x8914, 0x1, 0x8, 0x40
    flags = iff_up | iff_loopback | iff_running
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        fcntl.ioctl(s, siocsifflags, struct.pack("16sh22x", b"lo", flags))


def exchange(relay: str, spec: dict[str, float]) -> dict[str, object]:
    """Send n queries through the relay (pipelined, in order), collect what comes back."""
    loopback_up()
    n, delay = int(spec["n"]), float(spec["delay_ms"])
    repeat = int(spec.get("repeat_every", 0))
    stats = f"/tmp/relay-test-{os.getpid()}.json"
    cmd = [relay, "-u", f"{HOST}:{echo_server()}", "-d", str(delay), "-p", str(spec["loss"])]
    cmd += ["-s", str(int(spec.get("seed", 1))), "-o", stats, "-t", "20"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline().split()[1])
    cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    cli.settimeout(2 * delay / 1000 + 0.5)
    sent: dict[int, float] = {}
    rtts: dict[int, float] = {}

    def receive() -> None:  # while sending: the client's own buffer must not overflow
        try:
            while len(rtts) < n:
                data = cli.recv(2048)
                i = struct.unpack("!H", data[:2])[0]
                rtts[i] = (time.monotonic() - sent[i]) * 1000
        except TimeoutError:
            pass

    receiver = threading.Thread(target=receive)
    receiver.start()
    for i in range(n):
        name = f"q{i - 5 if repeat and i % repeat == repeat - 1 else i}.relay.test"
        sent[i] = time.monotonic()
        cli.sendto(query(i, name), (HOST, port))
        time.sleep(0.0002)  # well under the socket buffers: only the relay may lose
    receiver.join()
    proc.terminate()
    proc.wait(5)
    result = json.loads(Path(stats).read_text())
    os.unlink(stats)
    return {
        "rtts_ms": [rtts[i] for i in sorted(rtts)],
        "received": len(rtts),
        "lost": sorted(set(range(n)) - rtts.keys()),
        "stats": result,
    }


if __name__ == "__main__" and sys.argv[1:2] == ["--in-namespace"]:
    print(json.dumps(exchange(sys.argv[2], json.loads(sys.argv[3]))))
