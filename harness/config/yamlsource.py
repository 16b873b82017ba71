"""YAML loading that remembers where every value came from.

pydantic reports errors by key path (``("providers", 0, "model")``); users need
a file and a line. ``load_yaml`` returns plain data plus a map from key path to
line number, and interpolates ``${VAR}`` in scalar values on the way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ConfigError
from harness.secrets import ENV_REF, is_secret_variable, secret_path

KeyPath = tuple[str | int, ...]


@dataclass
class YamlSource:
    """Parsed YAML plus the line (1-based) of each key path."""

    path: Path
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, key_path: KeyPath) -> int | None:
        """Line of the deepest known prefix of ``key_path``."""
        for n in range(len(key_path), -1, -1):
            line = self.lines.get(tuple(key_path[:n]))
            if line is not None:
                return line
        return None

    def where(self, key_path: KeyPath) -> str:
        """``file:line, key a.b[0].c`` for error messages."""
        line = self.line_of(key_path)
        loc = f"{self.path}:{line}" if line is not None else str(self.path)
        return f"{loc}: {format_key_path(key_path)}" if key_path else loc


def format_key_path(key_path: KeyPath) -> str:
    """``('providers', 0, 'model')`` → ``providers[0].model``."""
    out = ""
    for part in key_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_yaml(path: Path, env: Mapping[str, str] | None = None) -> YamlSource:
    """Read a YAML file with the safe loader, track lines, interpolate ``${VAR}``."""
    env = os.environ if env is None else env
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise ConfigError(f"{path}:{_too_deep_line(text)}: {_TOO_DEEP}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    source = YamlSource(path=path, data=None)
    builder = _Builder(source, env)
    source.data = None if node is None else builder.build(node, ())
    return source


_PLAIN_TAGS = {
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")
}

# YAML aliases let a few lines expand into billions of values; a config never
# needs more than this many.
_MAX_NODES = 1_000_000
# Nor values nested deeper than this: deeper ones overflow the recursion of the
# YAML composer and of pydantic's serialiser (RecursionError, ValueError).
MAX_DEPTH = 64


class _Builder:
    def __init__(self, source: YamlSource, env: Mapping[str, str]):
        self.source = source
        self.env = env
        self.scalars = yaml.SafeLoader("")  # used only to construct scalar nodes
        self.count = 0

    def build(self, node: yaml.Node, key_path: KeyPath) -> Any:
        self.count += 1
        if self.count > _MAX_NODES:
            raise ConfigError(f"{self.source.path}: too many values (alias expansion?)")
        return _build(node, key_path, self)


_TOO_DEEP = f"invalid YAML: values nested more than {MAX_DEPTH} levels deep"


def _too_deep_line(text: str) -> int:
    """Line (1-based) where nesting first passes :data:`MAX_DEPTH`; the scanner does not recurse."""
    depth = 0
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if isinstance(token, _OPENERS):
                depth += 1
                if depth > MAX_DEPTH:
                    return int(token.start_mark.line) + 1
            elif isinstance(token, _CLOSERS):
                depth -= 1
    except yaml.YAMLError:
        pass
    return 1


_OPENERS = (
    yaml.FlowSequenceStartToken,
    yaml.FlowMappingStartToken,
    yaml.BlockSequenceStartToken,
    yaml.BlockMappingStartToken,
)
_CLOSERS = (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)


def _build(node: yaml.Node, key_path: KeyPath, b: _Builder) -> Any:
    source, env = b.source, b.env
    source.lines.setdefault(key_path, node.start_mark.line + 1)
    if len(key_path) > MAX_DEPTH:
        raise ConfigError(f"{path_line(source, node)}: {_TOO_DEEP}")
    if node.tag not in _PLAIN_TAGS:
        # Configs are data: tags such as !!python/object are refused, not constructed.
        raise ConfigError(
            f"{source.path}:{node.start_mark.line + 1}: invalid YAML: unsupported tag {node.tag}"
        )
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = b.scalars.construct_object(key_node)
            if isinstance(key, list | dict):
                raise ConfigError(f"{source.where(key_path)}: a key must be a plain value")
            if key in result:
                raise ConfigError(
                    f"{path_line(source, key_node)}: duplicate key {key!r}"
                    f" in {format_key_path(key_path) or 'the top level'}"
                )
            child = (*key_path, str(key))
            source.lines[child] = key_node.start_mark.line + 1
            result[key] = b.build(value_node, child)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [b.build(item, (*key_path, i)) for i, item in enumerate(node.value)]
    value = b.scalars.construct_object(node)
    if isinstance(value, str) and "${" in value:
        if secret_path(key_path):
            # A secret (a header such as x-api-key) keeps its ${VAR}: the config,
            # and so the manifest, holds the reference; the transport resolves it.
            return value
        return _interpolate(value, key_path, source, env)
    return value


def path_line(source: YamlSource, node: yaml.Node) -> str:
    return f"{source.path}:{node.start_mark.line + 1}"


def _interpolate(value: str, key_path: KeyPath, source: YamlSource, env: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if is_secret_variable(name):
            # Interpolation is for values like hosts and model names; the resolved
            # config is stored in the manifest, so a secret is never copied into it.
            raise ConfigError(
                f"{source.where(key_path)}: ${{{name}}} looks like a secret; secrets are not"
                " interpolated into configs: name the variable with api_key_env, or reference"
                " it from a secret-named header in params.extra_headers"
            )
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"{source.where(key_path)}: environment variable {name} is not set")

    return ENV_REF.sub(replace, value)
