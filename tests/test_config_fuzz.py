"""Property tests of config values and a bounded fuzzer of the whole config loader (issue 9).

The properties state the value rules for every input hypothesis can think of: durations and
their bounds, `host:port` nameservers and listen addresses, names. The fuzzer feeds the loader
random YAML-ish text and structure-aware mutations of `config.example.yaml` (values replaced by
hostile ones, keys dropped or invented, text cut and spliced) and asserts the loader's contract:
it returns a Config or raises ConfigError whose message is one line of bounded length, within a
generous time and a tracemalloc memory bound per input. Nothing else may escape.

Bounded for CI (`RBLWATCH_FUZZ_EXAMPLES`, default 200 inputs per test, a quarter of that for the
whole-file splices; some seconds in all); a soak runs it longer:

    RBLWATCH_FUZZ_EXAMPLES=20000 PYTHONPATH=$PWD .venv/bin/python -m pytest -q \
        tests/test_config_fuzz.py
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rblwatch.config import (
    Config,
    ConfigError,
    format_duration,
    format_nameserver,
    load_config,
    parse_config,
    parse_duration,
    parse_nameserver,
    split_listen_address,
)
from rblwatch.model import Nameserver

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("RBLWATCH_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
# the whole example file is parsed per input (some 50 ms under tracemalloc): a quarter as many
FUZZ_WHOLE_FILE = settings(FUZZ, max_examples=max(EXAMPLES // 4, 10))
MAX_MESSAGE = 500  # a ConfigError is one line; its length bounded whatever the input
MAX_SECONDS = 2.0  # per input, generous: a loaded CI machine; the loader takes milliseconds
MAX_PEAK_BYTES = 32 * 1024 * 1024  # per input (the file itself is at most 1 MiB)
UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
DAY = 86400.0

# --- durations ---------------------------------------------------------------------------------


@FUZZ
@given(st.integers(1, 10**6), st.sampled_from(sorted(UNITS)))
def test_a_count_and_a_unit_is_that_many_seconds(count: int, unit: str) -> None:
    assert parse_duration(f"{count}{unit}") == pytest.approx(count * UNITS[unit])


@FUZZ
@given(st.integers(1, 10**9).map(lambda ms: ms / 1000))
def test_a_formatted_duration_parses_back_to_itself(seconds: float) -> None:
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


@FUZZ
@given(st.one_of(st.text(max_size=40), st.integers(), st.floats(), st.booleans(), st.none()))
def test_any_duration_input_is_a_positive_finite_number_or_one_short_error(raw: object) -> None:
    try:
        seconds = parse_duration(raw)
    except ValueError as e:
        assert "\n" not in str(e) and len(str(e)) < 200
    else:
        assert math.isfinite(seconds) and seconds > 0


_BOUNDED = [  # (section, key, lowest, highest) of durations, as the README's table gives them
    ("schedule", "interval", 1.0, 7 * DAY),
    ("schedule", "confirm_delay", 0.0, 3600.0),  # 0 = confirm in the next cycle
    ("schedule", "jitter", 0.0, DAY),
    ("resolver", "timeout", math.ulp(0), 60.0),  # any time at all, but some
]


@FUZZ
@given(st.sampled_from(_BOUNDED), st.floats(0, 1e12, allow_nan=False))
def test_a_duration_is_accepted_exactly_within_its_bounds(
    bounded: tuple[str, str, float, float], seconds: float
) -> None:
    section, key, low, high = bounded
    data = {section: {key: seconds}}
    inside = low <= seconds <= high
    try:
        cfg = parse_config(data, source="t.yaml", env={})
    except ConfigError as e:
        assert not inside, str(e)
        assert e.path == f"{section}.{key}"
    else:
        assert inside
        assert getattr(getattr(cfg, section), key) == seconds


# --- nameservers, listen addresses, names ---------------------------------------------------------

ports = st.integers(1, 65535)


@FUZZ
@given(st.ip_addresses(), ports)
def test_a_nameserver_written_as_text_parses_back(address: Any, port: int) -> None:
    host = str(address)
    assert parse_nameserver(format_nameserver(host, port)) == Nameserver(host, port)
    assert parse_nameserver(host) == Nameserver(host, 53)


@FUZZ
@given(st.ip_addresses(v=6), ports)
def test_an_ipv6_nameserver_is_canonical_whatever_its_spelling(address: Any, port: int) -> None:
    spelled = address.exploded.upper()
    assert parse_nameserver(f"[{spelled}]:{port}") == Nameserver(str(address), port)


@FUZZ
@given(st.text(alphabet="0123456789abcdef.:[]% x", max_size=45))
def test_any_nameserver_text_is_an_address_and_port_or_one_short_error(text: str) -> None:
    try:
        server = parse_nameserver(text)
    except ValueError as e:
        assert "\n" not in str(e) and len(str(e)) < 200
    else:
        assert ipaddress.ip_address(server.host).compressed == server.host
        assert 1 <= server.port <= 65535


@FUZZ
@given(st.ip_addresses(), ports)
def test_a_listen_address_splits_into_host_and_port(address: Any, port: int) -> None:
    text = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
    assert split_listen_address(text) == (str(address), port)


_LIST_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")


@FUZZ
@given(st.text(alphabet="abz09-_A. ", min_size=1, max_size=70))
def test_a_list_name_is_accepted_exactly_when_it_follows_the_rule(name: str) -> None:
    data = {"lists": [{"name": name, "zone": "x.example", "kind": "ip"}]}
    ok = bool(_LIST_NAME.fullmatch(name)) and len(name) <= 63
    try:
        cfg = parse_config(data, source="t.yaml", env={})
    except ConfigError as e:
        assert not ok and e.path == "lists.0.name", str(e)
    else:
        assert ok and cfg.lists[0].name == name


# --- the loader's contract ------------------------------------------------------------------------


def _contract(load: Callable[[], Config]) -> None:
    """One input: a Config or one bounded ConfigError line, within the time and memory bounds."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        load()
    except ConfigError as e:
        message = str(e)
        assert "\n" not in message and len(message) <= MAX_MESSAGE, message[:MAX_MESSAGE]
    finally:
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert elapsed < MAX_SECONDS
    assert peak < MAX_PEAK_BYTES


def _load_text(text: str) -> None:
    # a fresh, empty directory: a *_file key the fuzzer invents reads nothing of ours
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "config.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        _contract(lambda: load_config(path, env={}, require_targets=True))


YAMLISH = st.lists(
    st.one_of(
        st.sampled_from(list("{}[]:,-&*!|>'\"#%@`?~ \n\t.0123456789")),
        st.sampled_from(["&a ", "*a", "<<: ", "targets:", "lists:", "- ", "  ", "\n  "]),
        st.characters(codec="utf-8"),
    ),
    max_size=200,
).map("".join)


@FUZZ
@given(YAMLISH)
def test_random_yamlish_text_is_a_config_or_one_error(text: str) -> None:
    _load_text(text)


EXAMPLE_TEXT = (ROOT / "config.example.yaml").read_text(encoding="utf-8")
# the example with its commented keys written in: every key the file documents
EXAMPLE_FULL = re.sub(r"(?m)^(\s*)# (\s*(?:- |[a-z0-9_]+:(?:\s|$)).*)$", r"\1\2", EXAMPLE_TEXT)

hostile_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(
        ["3000000d", "1e400", "${X}", "${", "*a", "0", "-1s", "1h30m", "[::1]:99999", "x" * 5000]
    ),
    st.lists(st.text(max_size=5), max_size=4),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=3),
)


def _paths(node: object, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here]
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*here, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*here, i))
    return out


@st.composite
def mutated_examples(draw: st.DrawFn) -> object:
    """The example config's data with a few of its values replaced, keys removed or invented."""
    data = yaml.safe_load(draw(st.sampled_from([EXAMPLE_TEXT, EXAMPLE_FULL])))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(data)[1:]))
        parent: Any = data
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "replace", "delete", "invent", "duplicate"]))
        if action == "replace":
            parent[path[-1]] = draw(hostile_values)
        elif action == "delete":
            del parent[path[-1]]
        elif action == "invent" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = draw(hostile_values)
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(parent[path[-1]])
    return data


@FUZZ
@given(mutated_examples())
def test_a_mutated_example_is_a_config_or_one_error(data: object) -> None:
    with tempfile.TemporaryDirectory() as directory:
        _contract(
            lambda: parse_config(
                data, source="t.yaml", base_dir=Path(directory), env={}, require_targets=True
            )
        )


@FUZZ_WHOLE_FILE
@given(
    st.integers(0, len(EXAMPLE_FULL)),
    st.integers(0, 200),
    st.sampled_from(["", "&a ", "*a", "[", "{", ":", "- ", "\n", "\t", "'", "!!python/object "]),
    st.integers(1, 60),
)
def test_a_cut_and_spliced_example_is_a_config_or_one_error(
    at: int, cut: int, insert: str, times: int
) -> None:
    _load_text(EXAMPLE_FULL[:at] + insert * times + EXAMPLE_FULL[at + cut :])


def test_the_unmutated_examples_load() -> None:
    # the fuzzer's seeds are valid, so its mutations start from a config, not from an error
    with tempfile.TemporaryDirectory() as directory:
        for name, text in (
            ("ops.url", "https://h.example/\n"),
            ("ops.key", _WHSEC),
            ("imap.pw", "imap-secret\n"),
        ):
            (Path(directory) / name).write_text(text, encoding="utf-8")
        env = {"SPAMHAUS_DQS_KEY": "k", "OPS_SECRET": _WHSEC, "SLACK_WEBHOOK_URL": "https://s/"}
        for text in (EXAMPLE_TEXT, EXAMPLE_FULL):
            data = yaml.safe_load(text)
            parse_config(data, base_dir=Path(directory), env=env, require_targets=True)


_WHSEC = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3"
