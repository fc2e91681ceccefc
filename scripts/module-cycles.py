#!/usr/bin/env python3
"""Finds import cycles between the modules of each crate of the workspace.

Usage: scripts/module-cycles.py [CRATE_DIR ...]   (default: every crate with a src/)

A module is a source file (`foo.rs`, `foo/mod.rs`); `lib.rs` and `main.rs`
are the crate root. Module A imports module B when A's code names a path that
resolves into B: `crate::b::...`, `super::...`, `self::child::...`, or a bare
`child::...` of a module A declares. Inline modules (`mod tests { ... }`)
belong to their file. The crate root is left out of the graph: it declares and
re-exports every module, so a module naming a re-export through `crate::X`
would otherwise always look like a cycle; re-exports are read through to the
module that defines the name.

Prints each cycle (a strongly connected group of two or more modules, with the
edges inside it and the lines that make them) and exits 1 when there is one;
prints "no import cycles in N modules of M crates" and exits 0 otherwise.
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PATH_RE = re.compile(r"\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+|[a-z_][a-z0-9_]*::[A-Za-z_][A-Za-z0-9_]*)")
USE_GROUP_RE = re.compile(r"\buse\s+((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*)\}\s*;", re.S)
MOD_DECL_RE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;", re.M)
PUB_USE_RE = re.compile(r"^\s*pub(?:\([^)]*\))?\s+use\s+([^;]+);", re.M)


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    # String literals: keep line count, drop their contents.
    return re.sub(r'"(?:[^"\\\n]|\\.)*"', '""', text)


def module_files(src):
    """Maps module path tuples to files for one crate's src/ directory."""
    modules = {}
    for path in sorted(src.rglob("*.rs")):
        rel = path.relative_to(src)
        parts = list(rel.with_suffix("").parts)
        if parts[0] == "bin":
            continue  # binaries are crates of their own
        if parts[-1] == "mod":
            parts = parts[:-1]
        if parts in (["lib"], ["main"]):
            parts = []
        modules[tuple(parts)] = path
    return modules


def resolve(module, path, modules):
    """The module a path written in `module` lands in, or None."""
    segs = path.split("::")
    if segs[0] == "crate":
        base, rest = (), segs[1:]
    elif segs[0] in ("super", "self"):
        base = module
        rest = segs
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    else:
        # A bare `child::` path: only a child module of this one counts.
        if module + (segs[0],) not in modules:
            return None
        base, rest = module, segs
    target = base
    for seg in rest:
        if target + (seg,) in modules:
            target = target + (seg,)
        else:
            break
    return target


def reexports(modules, texts):
    """name -> defining module, for names the crate root re-exports."""
    table = {}
    root_text = texts.get((), "")
    for spec in PUB_USE_RE.findall(root_text):
        spec = " ".join(spec.split())
        m = re.match(r"(?:crate::)?([a-z_][a-z0-9_:]*)::\{(.*)\}$", spec)
        if m:
            prefix, names = m.group(1), [n.strip() for n in m.group(2).split(",")]
        else:
            prefix, _, name = spec.rpartition("::")
            names = [name]
        prefix = prefix.removeprefix("crate::")
        for name in names:
            name = name.split(" as ")[-1].strip()
            if name and name != "self":
                target = resolve((), "crate::" + prefix.replace(" ", ""), modules)
                if target:
                    table[name] = target
    return table


def edges_of(module, text, modules, exported):
    found = {}

    def add(target, line):
        if target is not None and target not in ((), module):
            found.setdefault(target, line)

    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        for path in PATH_RE.findall(line):
            segs = path.split("::")
            target = resolve(module, path, modules)
            if target == () and len(segs) >= 2 and segs[0] == "crate" and segs[1] in exported:
                target = exported[segs[1]]
            add(target, f"{number}: {line.strip()}")
    for group in USE_GROUP_RE.finditer(text):
        prefix, items = group.group(1), group.group(2)
        number = text[: group.start()].count("\n") + 1
        for item in re.split(r"[,{}]", items):
            item = item.strip().split(" as ")[0].strip()
            if not item or item == "self" or item == "*":
                continue
            head = item.split("::")[0]
            target = resolve(module, f"{prefix}::{head}", modules)
            if target == () and prefix == "crate" and head in exported:
                target = exported[head]
            add(target, f"{number}: use {prefix}::{{{item}}}")
    return found


def sccs(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            out.append(group)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def main():
    crates = [Path(a) for a in sys.argv[1:]] or sorted(p.parent for p in ROOT.glob("*/src") if p.is_dir())
    total_modules, cycles = 0, 0
    for crate in crates:
        modules = module_files(crate / "src")
        texts = {m: strip_comments(p.read_text()) for m, p in modules.items()}
        exported = reexports(modules, texts)
        graph = {}
        for module, text in texts.items():
            if module == ():
                continue
            graph[module] = edges_of(module, text, modules, exported)
        total_modules += len(graph)
        for group in sccs(graph):
            if len(group) < 2:
                continue
            cycles += 1
            members = set(group)
            names = sorted("::".join(m) for m in group)
            print(f"cycle in {crate.name}: {' <-> '.join(names)}")
            for m in sorted(group):
                for target, line in sorted(graph[m].items()):
                    if target in members:
                        print(f"  {modules[m].relative_to(ROOT)} -> {'::'.join(target)}   ({line})")
    if cycles:
        print(f"{cycles} import cycle(s)")
        return 1
    print(f"no import cycles in {total_modules} modules of {len(crates)} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main())
