"""Walks of the YAML node tree: the line of a key, an alias that contains itself, a key given
twice."""

from __future__ import annotations

import yaml


def line_of(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """1-based line of the deepest YAML node on `loc` (the key's own line for mappings)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == str(part):
                    line, node = key_node.start_mark.line + 1, value_node
                    break
            else:
                return line
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def self_alias(
    node: yaml.Node | None, loc: tuple[str | int, ...], stack: list[yaml.Node]
) -> tuple[tuple[str | int, ...], int] | None:
    """A node that contains itself (`a: &a [*a]`): loading it would recurse without end."""
    if node is None or not isinstance(node, yaml.CollectionNode):
        return None
    if any(seen is node for seen in stack):
        return loc, node.start_mark.line + 1
    stack.append(node)
    try:
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                found = self_alias(value_node, (*loc, str(key_node.value)), stack)
                if found is not None:
                    return found
        else:
            for i, item in enumerate(node.value):
                found = self_alias(item, (*loc, i), stack)
                if found is not None:
                    return found
    finally:
        stack.pop()
    return None


def duplicate_keys(
    node: yaml.Node | None, loc: tuple[str | int, ...]
) -> list[tuple[tuple[str | int, ...], int, str]]:
    """Keys given twice in one mapping: YAML keeps the last silently, the user meant one."""
    out: list[tuple[tuple[str | int, ...], int, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            if key in seen:
                out.append(
                    ((*loc, key), line, f"duplicate key (also line {seen[key]}): give it once")
                )
            seen.setdefault(key, line)
            out += duplicate_keys(value_node, (*loc, key))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out += duplicate_keys(item, (*loc, i))
    return out
