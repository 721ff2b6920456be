"""Strict YAML loading: duplicate keys are errors, and every mapping remembers its line.

PyYAML's `safe_load` silently keeps the last of two duplicate keys, which would hide a curator's
mistake; and a validation error is only useful if it names the file and line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode


class KnowledgeError(Exception):
    """The curated data is broken; the message names the file, the entry and the problem."""


class LineDict(dict):
    """A mapping from YAML that knows the line it started on (1-based)."""

    line: int = 0


class _StrictLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _StrictLoader, node: MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    mapping = LineDict()
    mapping.line = node.start_mark.line + 1
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise KnowledgeError(
                f"{key_node.start_mark.line + 1}: duplicate key {key!r} "
                f"(first given in the mapping at line {mapping.line})"
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(path: Path) -> Any:
    """Parse one YAML file strictly; any problem becomes a KnowledgeError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KnowledgeError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except KnowledgeError as exc:
        raise KnowledgeError(f"{path}:{exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise KnowledgeError(f"{where}: not valid YAML: {problem}") from None
