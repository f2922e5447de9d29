"""Reading a config file: bounded YAML, then the top-level table that every section hangs from.

A config file is hostile input until parsed. The loader bounds what it builds before anything
walks it: the file's size, the nesting depth and the number of values counting every alias
expansion (a 449-byte file of nested aliases stands for hundreds of millions of values; "billion
laughs" for 10⁹). Each refusal is one line naming the file and the YAML position.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rblwatch.config.alerts import check_receiver_groups, parse_receivers
from rblwatch.config.bounces import parse_bounces
from rblwatch.config.lists import MAX_INTERVAL, MAX_JITTER, default_lists, parse_lists
from rblwatch.config.model import (
    AlertsConfig,
    Config,
    ConfigError,
    LimitsConfig,
    MetricsConfig,
    ResolverConfig,
    ScheduleConfig,
    StoreConfig,
    WebConfig,
)
from rblwatch.config.targets import parse_targets
from rblwatch.config.values import (
    HOUR,
    MIN_INTERVAL,
    MINUTE,
    _choice,
    _duration,
    _file_name,
    _int,
    _listen_address,
    _nameserver,
    _store_url,
)
from rblwatch.config.walker import (
    SHOWN_CHARS,
    Parser,
    _call,
    _Ctx,
    _Invalid,
    _items,
    _kind_of,
    _section,
    _show,
    _walk,
)
from rblwatch.model import HYGIENE_CHECKS

MAX_CONFIG_BYTES = 1024 * 1024
MAX_DEPTH = 32  # the deepest key of a config is 6 levels down
MAX_NODES = 100_000  # values in the file, each alias counted as what it stands for
MAX_RESOLVER_TIMEOUT = MINUTE
MAX_ATTEMPTS = 10
MAX_IN_FLIGHT = 10_000
MAX_CONFIRM = 10
MAX_CONFIRM_DELAY = HOUR
MAX_LEASE = HOUR
MIN_LEASE = 3.0  # a heartbeat every lease / 3: at least one a second


# --- YAML --------------------------------------------------------------------------------------


class _TooBig(yaml.MarkedYAMLError):
    """YAML the loader refuses to build: too deep, too many values, or an alias loop."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (plain YAML silently keeps the last one) and bounds
    what it composes: depth and values, each alias counted as the node it stands for."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0  # open nodes above the one being composed
        self._deepest = 0  # the deepest level reached inside the node being composed
        self._nodes = 0
        self._anchored: dict[int, tuple[int, int]] = {}  # id(node) → (values, height)

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        alias = self.check_event(yaml.AliasEvent)
        event: Any = self.current_event  # what check_event just peeked at
        if alias:
            node = super().compose_node(parent, index)
            size = self._anchored.get(id(node))
            if size is None:  # the anchor is still open: the alias is inside its own node
                raise _TooBig(
                    None, None, "an alias refers to a node it is part of", event.start_mark
                )
            self._charge(size[0], self._depth + size[1], event)
            return node
        level = self._depth + 1
        self._charge(1, level, event)
        outer_deepest, self._deepest, self._depth = self._deepest, level, level
        before = self._nodes
        node = super().compose_node(parent, index)
        height = self._deepest - level + 1
        self._deepest, self._depth = max(outer_deepest, self._deepest), level - 1
        if getattr(event, "anchor", None) is not None:
            self._anchored[id(node)] = (self._nodes - before + 1, height)
        return node

    def _charge(self, nodes: int, deepest: int, event: Any) -> None:
        self._nodes += nodes
        self._deepest = max(self._deepest, deepest)
        if deepest > MAX_DEPTH:
            problem = f"nested deeper than {MAX_DEPTH} levels"
            raise _TooBig(None, None, problem, event.start_mark)
        if self._nodes > MAX_NODES:
            problem = f"more than {MAX_NODES:,} values (counting what each alias stands for)"
            raise _TooBig(None, None, problem, event.start_mark)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as e:  # int('9'*5000), date 2024-13-01
            # Python's own advice for the first (sys.set_int_max_str_digits) is not the user's
            digits = "integer string conversion" in str(e)
            why = "a number with too many digits" if digits else _cut(str(e))
            raise yaml.constructor.ConstructorError(
                None, None, f"invalid value: {why}", node.start_mark
            ) from None


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # `<<:` merges may legitimately be overridden
        key = loader.construct_object(key_node)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # unhashable: construct_mapping reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {_show(key)}", key_node.start_mark
            )
    return loader.construct_mapping(node)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _cut(text: str) -> str:
    limit = 3 * SHOWN_CHARS
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _load_yaml(source: str, text: str) -> object:
    try:
        return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass: no arbitrary objects
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        problem = _cut(" ".join(str(getattr(e, "problem", None) or e).split()))
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        if isinstance(e, _TooBig):
            raise ConfigError(source, where, f"refused: {problem}") from None
        raise ConfigError(source, where, f"invalid YAML: {problem}") from None


def read_config_text(source: str) -> str:
    """The text of a config file, refusing one over MAX_CONFIG_BYTES before reading it all."""
    try:
        with open(source, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        why = getattr(e, "strerror", None) or e
        raise ConfigError(source, "", f"cannot read config file: {why}") from None
    if len(data) > MAX_CONFIG_BYTES:
        limit = MAX_CONFIG_BYTES // (1024 * 1024)
        raise ConfigError(source, "", f"cannot read config file: larger than {limit} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(source, "", "cannot read config file: not UTF-8 text") from None


# --- the top level -------------------------------------------------------------------------------

_TOP_FIELDS: Mapping[str, Parser] = {
    "resolver": _section(
        ResolverConfig,
        {
            "nameservers": _items(_nameserver),
            "timeout": _duration(MAX_RESOLVER_TIMEOUT),
            "attempts": _int(1, MAX_ATTEMPTS),
            "max_in_flight": _int(1, MAX_IN_FLIGHT),
        },
    ),
    "schedule": _section(
        ScheduleConfig,
        {
            "interval": _duration(MAX_INTERVAL, MIN_INTERVAL),
            "jitter": _duration(MAX_JITTER, zero_ok=True),
            "confirm": _int(1, MAX_CONFIRM),
            "confirm_delay": _duration(MAX_CONFIRM_DELAY, zero_ok=True),
            "health_interval": _duration(MAX_INTERVAL, MIN_INTERVAL),
            "hygiene_interval": _duration(MAX_INTERVAL, MIN_INTERVAL),
        },
    ),
    "store": _section(StoreConfig, {"url": _store_url, "lease": _duration(MAX_LEASE, MIN_LEASE)}),
    "web": _section(WebConfig, {"listen_address": _listen_address, "config_file": _file_name}),
    "metrics": _section(MetricsConfig, {"per_target": _choice("listed", "all", "none")}),
    "limits": _section(LimitsConfig, {"ipv4_min_prefix": _int(8, 32, between=True)}),
    "lists": parse_lists,
    "targets": parse_targets,
    "alerts": _section(AlertsConfig, {"receivers": parse_receivers}),
    "bounces": parse_bounces,
}


def parse_top(ctx: _Ctx, data: object, source: str, require_targets: bool) -> Config:
    if not isinstance(data, Mapping):
        raise _Invalid("", f"the top level must be a mapping of settings, not {_kind_of(data)}")
    _walk(ctx, "", {k: None for k in data}, _TOP_FIELDS)  # unknown keys first, in file order
    # targets are checked against limits, wherever `limits` sits in the file
    limits = data.get("limits")
    if limits is not None:
        ctx = dataclasses.replace(ctx, limits=_call(_TOP_FIELDS["limits"], ctx, "limits", limits))
    parsed = _walk(ctx, "", dict(data), _TOP_FIELDS)
    if "lists" not in parsed:
        parsed["lists"] = default_lists()
    if require_targets and not parsed.get("targets"):
        raise _Invalid("targets", "at least one target group is required for run")
    _check_names_free(parsed)
    if "alerts" in parsed and parsed.get("targets"):
        check_receiver_groups(parsed["alerts"].receivers, {g.group for g in parsed["targets"]})
    return Config(**parsed, source=source)


def _check_names_free(parsed: Mapping[str, object]) -> None:
    """A hygiene check's name is its subject's name in the store and the metrics: a list of
    the same name would share its pairs."""
    lists = parsed.get("lists") or ()
    assert isinstance(lists, tuple)
    for i, lst in enumerate(lists):
        if lst.name in HYGIENE_CHECKS:
            raise _Invalid(f"lists.{i}.name", f"{lst.name!r} is the name of a hygiene check")


def base_dir_of(source: str) -> Path:
    return Path(source).absolute().parent
