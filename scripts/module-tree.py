#!/usr/bin/env python3
"""Prints the crate's module tree and the import arrows between its top-level modules.

Reads `src/` as text: every `crate::NAME` path (in `use` lines and inline) is an arrow from the
file's top-level module to NAME. Arrows that close a cycle (two modules importing each other,
or a longer loop) point up and are flagged; so are files over the size limit and modules outside
the command layer that know the command line (clap or `crate::cli`).

Usage: scripts/module-tree.py [SRC_DIR]   (default: src next to this script's folder)
Exit status 0 always: this is a picture, not a check.
"""

import os
import re
import sys
from collections import defaultdict

MAX_LINES = 500
# The only modules that may know the command line.
COMMAND_LAYER = {"lib", "main", "cli", "commands"}


def strip_comments(text):
    """Drops // comments (doc comments included) and string literals' contents, roughly."""
    out = []
    for line in text.splitlines():
        line = re.sub(r'"(?:[^"\\]|\\.)*"', '""', line)
        cut = line.find("//")
        out.append(line if cut < 0 else line[:cut])
    return "\n".join(out)


def split_tests(text):
    """(code, tests): the text without its `#[cfg(test)] mod … { … }` blocks, and those blocks."""
    code, tests, pos = [], [], 0
    for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub\s+)?mod\s+\w+\s*\{", text):
        if m.start() < pos:
            continue
        depth, i = 0, m.end() - 1
        while i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                break
            i += 1
        code.append(text[pos : m.start()])
        tests.append(text[m.start() : i + 1])
        pos = i + 1
    code.append(text[pos:])
    return "".join(code), "".join(tests)


def brace_items(text, start):
    """The top-level names inside the braces that open at text[start]."""
    depth, item, names = 0, "", []
    for ch in text[start:]:
        if ch == "{":
            depth += 1
            if depth == 1:
                continue
        elif ch == "}":
            depth -= 1
            if depth == 0:
                break
        if depth == 1:
            if ch == ",":
                names.append(item)
                item = ""
            else:
                item += ch
        elif depth > 1 and not item.strip():
            pass
    names.append(item)
    out = []
    for n in names:
        m = re.match(r"\s*([a-z_][a-z0-9_]*)", n)
        if m and m.group(1) != "self":
            out.append(m.group(1))
    return out


def imports(text):
    """Top-level module names reached through `crate::`."""
    found = set()
    for m in re.finditer(r"\bcrate::(\{|[a-z_][a-z0-9_]*)", text):
        if m.group(1) == "{":
            found.update(brace_items(text, m.start(1)))
        else:
            found.add(m.group(1))
    return found


def top_module(rel):
    parts = rel[:-3].split(os.sep)
    return parts[0]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "src")
    src = os.path.normpath(src)
    files = []
    for root, _, names in os.walk(src):
        for n in names:
            if n.endswith(".rs"):
                files.append(os.path.relpath(os.path.join(root, n), src))
    files.sort()

    arrows = defaultdict(set)  # from -> {to}
    test_arrows = defaultdict(set)  # arrows that only unit tests draw
    clap_users = set()
    sizes = {}
    test_files = set()  # files declared `#[cfg(test)] mod name;`: unit tests kept in their own file
    for rel in files:
        with open(os.path.join(src, rel), encoding="utf-8") as f:
            raw = f.read()
        base = os.path.dirname(rel) if os.path.basename(rel) in ("mod.rs", "lib.rs", "main.rs") else rel[:-3]
        for m in re.finditer(r"#\[cfg\(test\)\]\s*(?:pub\s+)?mod\s+(\w+)\s*;", raw):
            test_files.add(os.path.normpath(os.path.join(base, m.group(1) + ".rs")))
            test_files.add(os.path.normpath(os.path.join(base, m.group(1), "mod.rs")))
    for rel in files:
        with open(os.path.join(src, rel), encoding="utf-8") as f:
            raw = f.read()
        sizes[rel] = raw.count("\n")
        text, tests = split_tests(strip_comments(raw))
        if rel in test_files:
            text, tests = "", text + tests
        me = top_module(rel)
        found = imports(text)
        if me in ("lib", "main"):
            # The crate root names its modules without `crate::`; main goes through the library.
            found |= set(re.findall(r"(?<![:\w])(?:inproc_bench::)?([a-z_][a-z0-9_]*)::", text))
        for to in found:
            known = os.path.exists(os.path.join(src, to + ".rs")) or os.path.isdir(
                os.path.join(src, to)
            )
            if known and to != me:
                arrows[me].add(to)
        for to in imports(tests):
            if to != me:
                test_arrows[me].add(to)
        if re.search(r"\bclap::|\buse clap\b", text) or "cli" in found:
            clap_users.add(me)

    modules = sorted({top_module(r) for r in files})

    print("## Module tree (lines per file; * over %d)" % MAX_LINES)
    for rel in files:
        depth = rel.count(os.sep)
        mark = " *" if sizes[rel] > MAX_LINES else ""
        print("%s%s  %d%s" % ("  " * depth, rel, sizes[rel], mark))

    # Strongly connected components (Tarjan): modules in one component import each other.
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(arrows[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for m in modules:
        if m not in index:
            visit(m)
    comp_of = {m: i for i, c in enumerate(comps) for m in c}

    # Layers: a module sits above everything it imports (cycles share one layer).
    layer = {}

    def depth_of(ci):
        if ci in layer:
            return layer[ci]
        layer[ci] = 0
        below = [comp_of[w] for v in comps[ci] for w in arrows[v] if comp_of[w] != ci]
        layer[ci] = 1 + max((depth_of(b) for b in below), default=-1)
        return layer[ci]

    for ci in range(len(comps)):
        depth_of(ci)

    print()
    print("## Arrows between top-level modules, top layer first (! = points back up: a cycle)")
    up = []
    for ci in sorted(range(len(comps)), key=lambda c: (-layer[c], comps[c])):
        for v in comps[ci]:
            outs = []
            for w in sorted(arrows[v]):
                cyc = comp_of[w] == ci
                outs.append(("!" if cyc else "") + w)
                if cyc:
                    up.append((v, w))
            print("L%d %-13s -> %s" % (layer[ci], v, ", ".join(outs) if outs else "(leaf)"))

    extra = sorted(
        (v, w) for v in test_arrows for w in test_arrows[v] if w not in arrows[v]
    )
    if extra:
        print()
        print("## Arrows only unit tests draw (#[cfg(test)] modules; not part of the layering)")
        for v, w in extra:
            print("%s -> %s" % (v, w))

    print()
    print("## Flags")
    if up:
        for c in comps:
            if len(c) > 1:
                print("cycle: %s import each other" % " <-> ".join(c))
    else:
        print("no cycles: every arrow points down")
    outside = sorted(clap_users - COMMAND_LAYER)
    if outside:
        print("knows the command line outside %s: %s" % ("/".join(sorted(COMMAND_LAYER)), ", ".join(outside)))
    else:
        print("only %s know the command line" % "/".join(sorted(COMMAND_LAYER & set(modules) | {"lib"})))
    big = [r for r in files if sizes[r] > MAX_LINES]
    if big:
        print("over %d lines: %s" % (MAX_LINES, ", ".join("%s (%d)" % (r, sizes[r]) for r in big)))
    else:
        print("every file is at most %d lines" % MAX_LINES)


if __name__ == "__main__":
    main()
