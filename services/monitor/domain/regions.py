"""The region tree the reports roll up (province → city → county/zone), from GB/T 2260 rows passed in."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RegionNode:
    code: str
    name: str
    level: str  # province / city / county
    parent: str | None


def level_of(code: str) -> str:
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


def prefix_of(code: str) -> str:
    """The region-code prefix shared by every code inside ``code`` (330000 → 33, 331100 → 3311)."""
    level = level_of(code)
    return code[:2] if level == "province" else code[:4] if level == "city" else code


@dataclass
class RegionTree:
    nodes: dict[str, RegionNode]
    _children: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for node in self.nodes.values():
            if node.parent:
                self._children.setdefault(node.parent, []).append(node.code)
        for kids in self._children.values():
            kids.sort()

    def name(self, code: str) -> str:
        node = self.nodes.get(code)
        return node.name if node else code

    def children(self, code: str) -> list[RegionNode]:
        return [self.nodes[c] for c in self._children.get(code, [])]

    def ancestors(self, code: str) -> list[RegionNode]:
        """From the root down to ``code``'s parent."""
        out: list[RegionNode] = []
        node = self.nodes.get(code)
        while node is not None and node.parent:
            node = self.nodes.get(node.parent)
            if node is not None:
                out.append(node)
        return list(reversed(out))

    def counties_under(self, code: str) -> list[RegionNode]:
        p = prefix_of(code)
        return [n for c, n in sorted(self.nodes.items()) if n.level == "county" and c.startswith(p)]
