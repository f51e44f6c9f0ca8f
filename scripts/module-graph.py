#!/usr/bin/env python3
"""The dependency graph between transitd's top-level modules (from `crate::`
paths in non-test code), and any cycles in it."""
import re
from pathlib import Path

SRC = Path("src")
edges = {}
for path in SRC.rglob("*.rs"):
    rel = path.relative_to(SRC).parts
    module = rel[0].removesuffix(".rs")
    if module in ("lib", "main"):
        continue
    text = path.read_text()
    # Leave out test modules: everything from the first #[cfg(test)] on, and test files.
    if "tests" in rel or path.name == "tests.rs":
        continue
    text = text.split("#[cfg(test)]")[0]
    # Doc comments and comments name modules without depending on them.
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))
    for target in re.findall(r"crate::(\w+)", text):
        if target != module:
            edges.setdefault(module, set()).add(target)

for module in sorted(edges):
    print(f"{module} -> {', '.join(sorted(edges[module]))}")


def cycles():
    found = set()
    for start in edges:
        stack = [(start, [start])]
        while stack:
            node, trail = stack.pop()
            for nxt in edges.get(node, ()):
                if nxt == start:
                    found.add(tuple(sorted(trail)))
                elif nxt not in trail:
                    stack.append((nxt, trail + [nxt]))
    return found


c = cycles()
print("cycles:", "none" if not c else sorted(c))
