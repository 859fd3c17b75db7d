"""YAML from untrusted files, with limits checked before anything is built.

Every data file (scenario, profile, step-time table, training config, ``--set`` value) is
read through :func:`load_yaml`: ``yaml.SafeLoader`` (no Python objects from tags) plus

* a size limit on the text (:data:`MAX_YAML_BYTES`);
* a nesting-depth limit and a limit on the document's size *after alias expansion*
  (:data:`MAX_NODES`), checked on the composed node graph before construction, so a
  700-byte "billion laughs" alias bomb is refused in microseconds instead of building
  gigabytes;
* duplicate keys refused (a later key silently winning hides typos);
* errors as one line naming the source and line.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_YAML_BYTES = 4_000_000
MAX_DEPTH = 64
MAX_NODES = 1_000_000


class YamlInputError(ValueError):
    """A YAML document is malformed or over a limit; the message names source and line."""


class _Loader(yaml.SafeLoader):
    source = "<yaml>"

    def construct_document(self, node: yaml.Node) -> Any:
        _check_graph(node, self.source)
        return super().construct_document(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = key_node.value
                if key in seen:
                    raise YamlInputError(f"{self.source}:{key_node.start_mark.line + 1}: duplicate key {key!r} "
                                         f"(first on line {seen[key]})")
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_graph(root: yaml.Node, source: str) -> None:
    """Depth and expanded size of the node graph (aliases share nodes: sizes are memoised per
    node, so the check is linear in the text while measuring the expanded document)."""
    size: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if depth > MAX_DEPTH:
            raise YamlInputError(f"{source}:{node.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
        if id(node) in size:
            continue
        kids = _children(node)
        if done or not kids:
            total = 1 + sum(size[id(k)] for k in kids)
            if total > MAX_NODES:
                raise YamlInputError(f"{source}: expands to more than {MAX_NODES:,} values (aliases?)")
            size[id(node)] = total
            continue
        stack.append((node, depth, True))
        stack.extend((k, depth + 1, False) for k in kids if id(k) not in size)


def load_yaml(text: str | bytes, source: str) -> Any:
    """Parse one YAML document from untrusted text (see the module docstring)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise YamlInputError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    if len(text) > MAX_YAML_BYTES:
        raise YamlInputError(f"{source}: {len(text):,} characters exceeds the limit {MAX_YAML_BYTES:,}")
    loader = _Loader(text)
    loader.source = source
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise YamlInputError(f"{source}{line}: invalid YAML: {problem}") from None
    except RecursionError:
        raise YamlInputError(f"{source}: nested deeper than {MAX_DEPTH} levels") from None
    finally:
        loader.dispose()


def read_yaml_file(path: Any, source: str | None = None) -> Any:
    """:func:`load_yaml` of a file: refuses directories, unreadable and oversized files."""
    from pathlib import Path

    p = Path(path)
    src = source or str(p)
    if p.is_dir():
        raise YamlInputError(f"{src}: is a directory, not a YAML file")
    try:
        size = p.stat().st_size
        if size > MAX_YAML_BYTES:
            raise YamlInputError(f"{src}: {size:,} bytes exceeds the limit {MAX_YAML_BYTES:,}")
        data = p.read_bytes()
    except OSError as exc:
        raise YamlInputError(f"{src}: cannot read ({exc.strerror or exc})") from None
    return load_yaml(data, src)
