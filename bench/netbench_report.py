"""The bars of issue 14's slow-network benchmark, checked, and its markdown table.

Takes the per-cell summaries bench_netbench.py builds (dicts: medians of rates and times, the
worst of every count over the rounds).
"""

from __future__ import annotations

from typing import Any

LOSS_ERRORS_PER_65536 = 3  # 3 attempts at 1% each way: ~0.5 expected, 3 allowed
BAR_4096_VS_64 = 1.3
BAR_LOSS_IDEAL = 0.80
BAR_64_IDEAL = 0.90
BAR_LOOPBACK = 0.78

Cell = dict[str, Any]


def _find(cells: list[Cell], rtt: float, loss: float, in_flight: int) -> Cell | None:
    for c in cells:
        if (c["rtt_ms"], c["loss_each_way"], c["in_flight"]) == (rtt, loss, in_flight):
            return c
    return None


def _bar(name: str, ok: bool, value: str) -> dict[str, Any]:
    return {"bar": name, "pass": ok, "value": value}


def _wrong(c: Cell) -> int:
    if c["failed"]:
        return 1
    return c["missing"] + c["errors"] + c["extra"] + c["wrong_codes"]


def _what_went_wrong(c: Cell) -> str:
    if c["failed"]:
        return f"{c['cell']}: {c['failed'][0]}"
    wrong = c["extra"] + c["wrong_codes"]
    return f"{c['cell']}: {c['missing']} missing, {c['errors']} errors, {wrong} wrong"


def _exact_bar(cells: list[Cell]) -> dict[str, Any]:
    clean = [c for c in cells if not c["loss_each_way"]]
    bad = [c for c in clean if _wrong(c)]
    value = "; ".join(_what_went_wrong(c) for c in bad)
    return _bar(
        "every cell without loss: 0 listed pairs missing, 0 errors, 0 wrong results",
        not bad,
        value or f"all {len(clean)} cells exact",
    )


def _loss_errors_bar(c: Cell | None) -> dict[str, Any]:
    name = f"50 ms + 1% loss: errors <= {LOSS_ERRORS_PER_65536} per 65,536 lookups"
    if c is None or c["failed"]:
        return _bar(name, False, "no result")
    allowed = LOSS_ERRORS_PER_65536 * c["lookups"] / 65536
    return _bar(name, c["errors"] <= allowed, f"{c['errors']} errors (allowed {allowed:g})")


def _ratio_bar(name: str, ratio: float | None, bar: float) -> dict[str, Any]:
    if ratio is None:
        return _bar(name, False, "no result")
    return _bar(name, ratio >= bar, f"{ratio:.2f} (bar {bar:.2f})")


def _burst_bar(c64: Cell | None, c4096: Cell | None) -> dict[str, Any]:
    name = f"0 ms: 4,096 in flight no slower than {BAR_4096_VS_64}x the time at 64"
    if not (c64 and c4096 and c64["wall_s"] and c4096["wall_s"]):
        return _bar(name, False, "no result")
    x = c4096["wall_s"] / c64["wall_s"]
    return _bar(
        name,
        x <= BAR_4096_VS_64,
        f"{c4096['wall_s']:.2f} s vs {c64['wall_s']:.2f} s = {x:.2f}x",
    )


def bars(cells: list[Cell]) -> list[dict[str, Any]]:
    loss = _find(cells, 50, 0.01, 256)
    s64 = _find(cells, 50, 0, 64)
    loop = next((c for c in cells if c["cell"].startswith("loopback")), None)
    return [
        _exact_bar(cells),
        _loss_errors_bar(loss),
        _burst_bar(_find(cells, 0, 0, 64), _find(cells, 0, 0, 4096)),
        _ratio_bar(
            f"50 ms + 1% loss / 256: >= {BAR_LOSS_IDEAL:.2f} of in_flight / RTT",
            loss["ratio_ideal"] if loss else None,
            BAR_LOSS_IDEAL,
        ),
        _ratio_bar(
            f"50 ms / 64: >= {BAR_64_IDEAL:.2f} of in_flight / RTT",
            s64["ratio_ideal"] if s64 else None,
            BAR_64_IDEAL,
        ),
        _ratio_bar(
            f"loopback x 4 lists: >= {BAR_LOOPBACK:.2f}x dnsperf",
            loop["ratio_dnsperf"] if loop else None,
            BAR_LOOPBACK,
        ),
    ]


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def _n(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def _row(c: Cell) -> str:
    wall = "failed" if c["wall_s"] is None else f"{c['wall_s']:.2f} s"
    found = f"{c['listed']:,} / {c['expected_listed']:,} ({c['missing']})"
    if c["wall_s"] is None:
        found = f"- / {c['expected_listed']:,}"
    dnsperf = (
        f"{c['dnsperf_qps']:,.0f} ({c['dnsperf_lost']:,} lost, {c['dnsperf_latency_ms']:.1f} ms)"
    )
    cols = [
        c["cell"], wall, f"{c['rate']:,.0f}", _x(c["ratio_dnsperf"]),
        _x(c["ratio_ideal"]), _n(c["errors"]), found, _n(c["retransmissions"]),
        _n(c["server_drops"]), dnsperf,
    ]  # fmt: skip
    return "| " + " | ".join(cols) + " |"


def markdown(cells: list[Cell], checked: list[dict[str, Any]]) -> str:
    head = [
        "| cell (RTT / in flight) | rblwatch | lookups/s | x dnsperf | x ideal | errors "
        "| listed found / expected (missing) | retransmissions | server drops "
        "| dnsperf q/s (lost, avg latency) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [_row(c) for c in cells]
    notes = [
        "",
        "ideal = in_flight / RTT; retransmissions = repeated questions the relay saw from "
        "rblwatch; server drops = queries the relay passed to rbldnsd that it never answered "
        "(its receive buffer overflowed). Times: medians over the rounds; counts: the worst round.",
        "",
        "| bar | result | |",
        "|---|---|---|",
    ]
    bar_rows = [
        f"| {b['bar']} | {b['value']} | {'PASS' if b['pass'] else 'FAIL'} |" for b in checked
    ]
    return "\n".join(head + rows + notes + bar_rows)
