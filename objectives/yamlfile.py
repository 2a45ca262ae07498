"""A YAML loader for the files users hand us (plans, configs) that refuses documents too deep or too big to walk."""

from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 64  # a plan nests five or six levels; PyYAML's composer recurses once per level
# Aliases repeat what they point to without copying it, so ten lines can stand for a billion values that every
# later walk (validation, hashing, JSON) visits one by one. A real plan or config has a few thousand.
MAX_VALUES = 200_000


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader (no arbitrary objects) that refuses nesting past MAX_DEPTH levels and a document whose
    aliases expand past MAX_VALUES values, with a YAML error at the offending place."""

    _depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self._depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"it nests deeper than {MAX_DEPTH} levels", self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None and _expanded_size(node, {}, set()) > MAX_VALUES:
            raise yaml.composer.ComposerError(
                None, None, f"its aliases (*name) expand to over {MAX_VALUES:,} values; write the values out or "
                            "use fewer aliases", node.start_mark)
        return node


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many values `node` stands for once every alias is expanded; MAX_VALUES + 1 once past it."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:  # an alias to a node that contains it: endless once expanded
        return MAX_VALUES + 1
    open_nodes.add(key)
    size = 1
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    for child in children:
        size += _expanded_size(child, sizes, open_nodes)
        if size > MAX_VALUES:
            break
    open_nodes.discard(key)
    sizes[key] = min(size, MAX_VALUES + 1)
    return sizes[key]
