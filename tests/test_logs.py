"""Log hygiene: one line per distinct problem per window, repeats counted (issue 9)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from rblwatch.logs import EVENT_LINE, RepeatFilter, setup_logging


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logged() -> tuple[logging.Logger, io.StringIO, Clock]:
    clock = Clock()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(RepeatFilter(600, clock=clock))
    logger = logging.getLogger("rblwatch.test-logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, out, clock


def test_a_repeated_warning_is_one_line_per_window_with_its_count(
    logged: tuple[logging.Logger, io.StringIO, Clock],
) -> None:
    logger, out, clock = logged
    for _ in range(40):
        logger.warning("hostname %s not resolved: %s", "mx1.example.net", "NXDOMAIN")
        clock.now += 10  # a cycle every 10 s: 400 s, inside the window
    assert out.getvalue().splitlines() == [
        "WARNING hostname mx1.example.net not resolved: NXDOMAIN"
    ]
    clock.now += 600
    logger.warning("hostname %s not resolved: %s", "mx1.example.net", "NXDOMAIN")
    assert out.getvalue().splitlines()[1] == (
        "WARNING hostname mx1.example.net not resolved: NXDOMAIN"
        " (repeated 39 times in the last 10m)"
    )


def test_distinct_problems_each_get_their_line(
    logged: tuple[logging.Logger, io.StringIO, Clock],
) -> None:
    logger, out, _ = logged
    for name in ("a.example", "b.example", "a.example", "b.example"):
        logger.warning("hostname %s not resolved", name)
    logger.error("hostname %s not resolved", "a.example")  # another level: another problem
    assert out.getvalue().splitlines() == [
        "WARNING hostname a.example not resolved",
        "WARNING hostname b.example not resolved",
        "ERROR hostname a.example not resolved",
    ]


def test_info_lines_are_never_held_back(logged: tuple[logging.Logger, io.StringIO, Clock]) -> None:
    logger, out, _ = logged
    for _ in range(3):
        logger.info("cycle of %s done", "bl")
    assert len(out.getvalue().splitlines()) == 3


def test_the_filter_forgets_the_oldest_problem_past_its_bound() -> None:
    f = RepeatFilter(600, max_keys=100, clock=lambda: 0.0)
    for i in range(10_000):
        rec = logging.LogRecord("x", logging.WARNING, __file__, 1, "problem %d", (i,), None)
        assert f.filter(rec)
    assert len(f._seen) == 100


def test_json_lines_carry_the_repeat_count_too() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("info", "json", out, repeat_window=3600)
        for _ in range(5):
            logging.getLogger("rblwatch.test").warning("list %s: dead", "bl")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [d["msg"] for d in lines] == ["list bl: dead"]


def test_event_lines_always_go_through(logged: tuple[logging.Logger, io.StringIO, Clock]) -> None:
    # found in review: listed, delisted, listed again within the window lost its second line
    logger, out, _ = logged
    for kind in ("listed", "delisted", "listed"):
        logger.warning("%s %s on %s", kind, "192.0.2.1", "bl", extra=EVENT_LINE)
    assert out.getvalue().splitlines() == [
        "WARNING listed 192.0.2.1 on bl",
        "WARNING delisted 192.0.2.1 on bl",
        "WARNING listed 192.0.2.1 on bl",
    ]
