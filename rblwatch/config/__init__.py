"""Configuration: one YAML file → frozen, validated objects (SPEC §1a, §5 to §8, §12).

Validation happens once, here, strictly, and the same code serves `check-config`, startup and
reload. Unknown keys are errors, and every error is one line naming the file and the key path
(`lists.2.zone: …`, indexes counted from 0) or the YAML position. Defaults live in the dataclasses
of `model` and nowhere else. No network; the only I/O is reading the config file and the files
its `*_file` keys name, each of bounded size.

The package: `model` (the objects), `walker` (the table-driven key-path walker), `values` (leaf
values and their bounds), `lists` (the one list schema, shared with the catalogue), `targets`,
`alerts`, `loader` (bounded YAML, the top level) and `catalogue` (the built-in lists). It imports
nothing of rblwatch but `rblwatch.model`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from rblwatch.config.loader import (
    MAX_CONFIG_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    _load_yaml,
    base_dir_of,
    parse_top,
    read_config_text,
)
from rblwatch.config.model import (
    DEFAULT_CONFIG_PATH,
    EVENT_KINDS,
    RECEIVER_FORMATS,
    SIGNED_FORMATS,
    AlertsConfig,
    Config,
    ConfigError,
    HygieneConfig,
    LimitsConfig,
    MetricsConfig,
    PerTarget,
    Receiver,
    ReceiverFormat,
    ResolverConfig,
    ScheduleConfig,
    StoreConfig,
    TargetGroup,
    WebConfig,
)
from rblwatch.config.targets import IPV6_MIN_PREFIX, check_selector
from rblwatch.config.values import (
    MIN_INTERVAL,
    STORE_SCHEMES,
    format_duration,
    format_nameserver,
    parse_duration,
    parse_nameserver,
    split_listen_address,
)
from rblwatch.config.walker import _Ctx, _Invalid

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "EVENT_KINDS",
    "IPV6_MIN_PREFIX",
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "MIN_INTERVAL",
    "RECEIVER_FORMATS",
    "SIGNED_FORMATS",
    "STORE_SCHEMES",
    "AlertsConfig",
    "Config",
    "ConfigError",
    "HygieneConfig",
    "LimitsConfig",
    "MetricsConfig",
    "PerTarget",
    "Receiver",
    "ReceiverFormat",
    "ResolverConfig",
    "ScheduleConfig",
    "StoreConfig",
    "TargetGroup",
    "WebConfig",
    "check_selector",
    "default_config",
    "format_duration",
    "format_nameserver",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_nameserver",
    "split_listen_address",
]


def load_config(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    require_targets: bool = False,
) -> Config:
    """Read, parse and validate a config file, or raise ConfigError."""
    source = os.fspath(path)
    data = _load_yaml(source, read_config_text(source))
    return parse_config(
        data,
        source=source,
        base_dir=base_dir_of(source),
        env=env,
        require_targets=require_targets,
    )


def parse_config(
    data: object,
    *,
    source: str = "<config>",
    base_dir: Path | None = None,
    env: Mapping[str, str] | None = None,
    require_targets: bool = False,
) -> Config:
    """Validate already-loaded YAML data. Relative `*_file` paths are relative to `base_dir`."""
    ctx = _Ctx(os.environ if env is None else env, base_dir)
    try:
        return parse_top(ctx, {} if data is None else data, source, require_targets)
    except _Invalid as e:
        raise ConfigError(source, e.path, e.problem) from None


def default_config() -> Config:
    """The configuration without a file: catalogue default lists, the system resolver."""
    return parse_config({}, source="<defaults>")
