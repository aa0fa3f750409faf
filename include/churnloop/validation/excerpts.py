"""How much of a drop's own values validation keeps where people and tools read them.

Messages name at most ``EXAMPLES_SHOWN`` examples of ``LONGEST_EXAMPLE`` characters; the
stored result and the pages keep strings to ``LONGEST_STORED`` characters and lists to
``MOST_STORED`` items. Every cut says so; the data itself is kept whole in quarantine.
"""

from __future__ import annotations

from typing import Any

from churnloop.errors import excerpt

EXAMPLES_SHOWN = 5
LONGEST_EXAMPLE = 60
LONGEST_STORED = 1_000
MOST_STORED = 100


def capped(node: Any, *, lists: bool = True) -> Any:
    """``node`` (JSON-like: dicts, lists, scalars) with long strings and, if ``lists``, long
    lists cut; a cut list ends with a string saying how many items it left out."""
    if isinstance(node, str):
        return excerpt(node, LONGEST_STORED)
    if isinstance(node, dict):
        return {key: capped(value, lists=lists) for key, value in node.items()}
    if isinstance(node, list | tuple):
        kept = [capped(item, lists=lists) for item in node[: MOST_STORED if lists else None]]
        if len(node) > len(kept):
            kept.append(f"… (truncated, {len(node) - len(kept):,} more items)")
        return kept
    return node
