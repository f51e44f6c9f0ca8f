#!/usr/bin/env python3
"""The longest Rust functions under the given directories (a brace counter,
not a parser: good enough to rank function bodies by line count)."""
import re
import sys
from pathlib import Path

FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def functions(path):
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FN.match(lines[i])
        if not m:
            i += 1
            continue
        depth, start, opened = 0, i, False
        j = i
        while j < len(lines):
            code = re.sub(r'"(\\.|[^"\\])*"|//.*', "", lines[j])
            if not opened and ";" in code and "{" not in code:
                break  # a declaration without a body
            depth += code.count("{") - code.count("}")
            opened = opened or "{" in code
            if opened and depth <= 0:
                yield j - start + 1, f"{path}:{start + 1}", m.group(6)
                break
            j += 1
        i += 1


def main():
    roots = sys.argv[1:] or ["src", "keys/src"]
    found = [f for r in roots for p in sorted(Path(r).rglob("*.rs")) for f in functions(p)]
    for n, where, name in sorted(found, reverse=True)[:10]:
        print(f"{n:5} {where} {name}")


main()
