"""rblwatch.config against hostile input (issue 9): aliases, nesting, huge numbers, empty files.

Each refusal is one line naming the file and the YAML position or key path, exit code 2 through
the CLI, never a traceback; the loader's work is bounded before anything walks what it built. The
documented bounds (README, Configuration) are read from the README's table and tried both at and
past each bound, so the table and the code cannot drift apart.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
import yaml

from rblwatch import cli
from rblwatch.config import MAX_DEPTH, MAX_NODES, ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent
TARGETS = "targets: [{group: g, addresses: [192.0.2.1]}]\n"
MAX_MESSAGE = 400  # a config error is one short line, whatever the file holds


def _aliases(levels: int, fanout: int = 9) -> str:
    """A flow sequence of `levels` anchors, each standing for `fanout` times the one before."""
    items = ["&a0 [" + ", ".join(["lol"] * fanout) + "]"]
    items += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * fanout) + "]" for i in range(1, levels)]
    return "[" + ", ".join(items) + "]"


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    message = str(info.value)
    assert "\n" not in message and len(message) <= MAX_MESSAGE, message[:1000]
    return message


def _write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _check_config(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """`rblwatch check-config` in process: exit 2 and one line on stderr, nothing on stdout."""
    code = cli.main(["check-config", "--config.file", str(path)])
    out, err = capsys.readouterr()
    assert (code, out) == (cli.EXIT_USAGE, "")
    assert err.count("\n") == 1 and "Traceback" not in err and len(err) <= MAX_MESSAGE + 11
    return err


# --- aliases --------------------------------------------------------------------------------------


def test_nested_aliases_are_refused_before_they_are_built(tmp_path: Path) -> None:
    # 299 bytes standing for 600,000 values: the old loader built them and the error spelled
    # every one of them out (a 449-byte file of this kind printed a 351 MB line)
    path = _write(tmp_path, f"schedule:\n  interval: {_aliases(6)}\n")
    assert path.stat().st_size < 449
    assert re.fullmatch(
        rf"{path}: line 2, column \d+: refused: more than {MAX_NODES:,} values"
        r" \(counting what each alias stands for\)",
        _error(path),
    )


def test_a_bad_value_made_of_aliases_is_echoed_as_a_short_excerpt(tmp_path: Path) -> None:
    # 7,380 values: under the bound, so it is built, but the message quotes only an excerpt
    message = _error(_write(tmp_path, f"schedule:\n  interval: {_aliases(4)}\n"))
    assert message.startswith(f"{tmp_path}/c.yaml: schedule.interval: invalid duration [")
    assert message.endswith("(use e.g. 30s, 10m, 1h)")
    assert len(message.partition(": schedule.interval: ")[2]) < 200


def test_a_bad_string_is_echoed_in_a_bounded_number_of_characters() -> None:
    # 60 characters of excerpt, but "\U0001eebc" spells one in 10: the repr is cut too (found by
    # tests/test_config_fuzz.py)
    data = {"schedule": {"interval": "\U0001eebc" * 100}, "targets": None}
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="t.yaml")
    assert len(info.value.problem) < 120, info.value.problem
    assert info.value.problem.startswith("invalid duration '\\U0001eebc")


def test_billion_laughs_is_refused_in_bounded_time_and_memory(tmp_path: Path) -> None:
    # the classic: 10 levels of 10 stand for 10**10 strings; the old loader ended in MemoryError
    path = _write(tmp_path, f"lists: {_aliases(10, fanout=10)}\n")
    tracemalloc.start()
    started = time.perf_counter()
    try:
        message = _error(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 5
    assert peak < 20 * 1024 * 1024
    assert "refused: more than 100,000 values" in message


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    # YAML allows it (a list containing itself); nothing in a config can be one
    message = _error(_write(tmp_path, "targets: &a [{group: g, addresses: *a}]\n"))
    assert message.endswith("line 1, column 36: refused: an alias refers to a node it is part of")


def test_aliases_within_the_bounds_still_work(tmp_path: Path) -> None:
    text = (
        "x-addresses: &mail [192.0.2.1, 192.0.2.2]\n"
        "targets: [{group: a, addresses: *mail}, {group: b, addresses: *mail}]\n"
    )
    with pytest.raises(ConfigError, match=r"x-addresses: unknown key"):
        load_config(_write(tmp_path, text), env={})
    text = "targets:\n  - &g {group: a, addresses: [192.0.2.1]}\n  - {<<: *g, group: b}\n"
    cfg = load_config(_write(tmp_path, text), env={})
    assert [(g.group, g.addresses) for g in cfg.targets] == [
        ("a", ("192.0.2.1",)),
        ("b", ("192.0.2.1",)),
    ]


# --- nesting --------------------------------------------------------------------------------------


def test_deep_nesting_is_refused_at_the_documented_depth(tmp_path: Path) -> None:
    # 500 levels in 1 KB: the old loader ended in a 3,000-line RecursionError traceback
    path = _write(tmp_path, "targets: " + "[" * 500 + "]" * 500 + "\n")
    assert _error(path) == (
        f"{path}: line 1, column {len('targets: ') + MAX_DEPTH}:"
        f" refused: nested deeper than {MAX_DEPTH} levels"
    )


def test_nesting_up_to_the_depth_is_a_schema_error_not_a_refusal(tmp_path: Path) -> None:
    inner = MAX_DEPTH - 1  # the top-level mapping is the first level
    path = _write(tmp_path, "targets: " + "[" * inner + "]" * inner + "\n")
    assert _error(path) == f"{path}: targets.0: must be a mapping, not a list"


def test_deep_nesting_and_aliases_through_the_cli_are_one_line_and_exit_2(tmp_path: Path) -> None:
    # a real process: no traceback can hide in a caught exception
    for text in ("targets: " + "[" * 500 + "]" * 500, f"lists: {_aliases(10, fanout=10)}"):
        path = _write(tmp_path, text + "\n")
        proc = subprocess.run(
            [sys.executable, "-m", "rblwatch", "check-config", "--config.file", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert (proc.returncode, proc.stdout) == (2, "")
        assert proc.stderr.count("\n") == 1 and "refused: " in proc.stderr, proc.stderr[:2000]


# --- values the YAML constructor cannot build -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("schedule: {confirm: " + "9" * 5000 + "}", "a number with too many digits"),
        ("targets: [{group: g, labels: {since: 2024-13-01}}]", "month must be in 1..12"),
    ],
)
def test_a_value_yaml_cannot_build_is_one_line(tmp_path: Path, text: str, problem: str) -> None:
    # both were ValueError tracebacks
    assert _error(_write(tmp_path, text + "\n")).endswith(f"invalid YAML: invalid value: {problem}")


# --- bounds ---------------------------------------------------------------------------------------

_ROW = re.compile(r"^\| (`[^|]+`) \| (?:up to|0 to|\d[\d,]* to|1s to) ([0-9,]+[a-z]*) \|$")


def _documented_bounds() -> list[tuple[str, str]]:
    """(key path, maximum) for every key of the README's table of bounds."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    out = []
    for line in text.splitlines():
        m = _ROW.match(line)
        if m:
            keys = re.findall(r"`([^`]+)`", m.group(1))
            parent = keys[0].rpartition(".")[0]
            out += [(parent + k if k.startswith(".") else k, m.group(2)) for k in keys]
    return out


def _config_with(key: str, value: str) -> str:
    """A minimal config that sets the dotted `key` (`lists[]`, `alerts.receivers[]` entries)."""
    *parents, leaf = key.split(".")
    number = value.replace(",", "")
    node: object = {leaf: int(number) if number.isdigit() else value}
    if key.endswith(".backoff.initial"):  # initial may not be longer than max
        node = {**node, "max": value}  # type: ignore[dict-item]
    for part in reversed(parents):
        if part == "lists[]":
            node = {"lists": [{"name": "x", "zone": "x.example", "kind": "ip", **node}]}  # type: ignore[dict-item]
        elif part == "receivers[]":
            node = {"receivers": [{"name": "r", "url": "https://h.example/", **node}]}  # type: ignore[dict-item]
        else:
            node = {part: node}
    return yaml.safe_dump(node) + TARGETS


def _past(maximum: str) -> str:
    if maximum[-1].isalpha():
        return maximum + "1s"  # 7d1s
    return str(int(maximum.replace(",", "")) + 1)


def test_the_readme_documents_every_bound() -> None:
    keys = {k for k, _ in _documented_bounds()}
    assert len(keys) == 18, sorted(keys)
    assert {"schedule.interval", "schedule.confirm_delay", "lists[].interval"} <= keys
    assert "schedule.hygiene_interval" in keys


@pytest.mark.parametrize(("key", "maximum"), _documented_bounds())
def test_every_documented_bound_holds(key: str, maximum: str) -> None:
    data = yaml.safe_load(_config_with(key, maximum))
    parse_config(data, source="t.yaml", require_targets=True)  # the bound itself is allowed
    with pytest.raises(ConfigError) as info:
        parse_config(yaml.safe_load(_config_with(key, _past(maximum))), source="t.yaml")
    problem = info.value.problem
    path = key.replace("[]", ".0")
    assert info.value.path == path
    assert re.fullmatch(rf"must be (at most|between \d+ and) {maximum}, not .*", problem), problem


@pytest.mark.parametrize(
    "text",
    ["schedule: {interval: 3000000d}", "schedule: {confirm_delay: 100000d}"],
)
def test_a_huge_duration_is_refused_by_check_config_as_by_run(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # 3000000d passed check-config, then crashed run with OverflowError in the scheduler; a huge
    # confirm_delay made every confirming round fail
    err = _check_config(_write(tmp_path, text + "\n" + TARGETS), capsys)
    assert "must be at most " in err


# --- check-config accepts exactly what run accepts ------------------------------------------------


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n", "schedule: {interval: 1h}\n"])
def test_check_config_refuses_a_file_run_refuses(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # it said OK for an empty file and for one without targets; run refuses both
    path = _write(tmp_path, text)
    err = _check_config(path, capsys)
    assert err == f"rblwatch: {path}: targets: at least one target group is required for run\n"
