#!/usr/bin/env python3
"""The layers hold: what each crate may depend on, and no import cycles between the modules of a
crate. Run by scripts/layers.sh (CI); prints what breaks a rule and exits 1.

A module's imports are the `crate::<module>` paths in its files (a directory module counts as
one module with its submodules); tests (`#[cfg(test)] mod tests`) are left out, as they may use
anything of their crate.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATES = {
    "tessera-domain": ROOT / "core/domain/src",
    "tessera-core": ROOT / "core/src",
    "tessera-till": ROOT / "core/till/src",
    "tessera-server": ROOT / "server/src",
    "tessera-ffi": ROOT / "bindings/src",
    "tessera-cli": ROOT / "cli/src",
}


def strip_tests(text: str) -> str:
    """The text without its inline test module (`#[cfg(test)] mod tests { … }`, last in a file);
    a `mod tests;` declaration keeps what follows it."""
    i = text.find("#[cfg(test)]\nmod tests {")
    return text if i < 0 else text[:i]


def module_of(src: Path, f: Path) -> str:
    rel = f.relative_to(src)
    if rel.parts[0] in ("lib.rs", "main.rs"):
        return "<root>"
    return rel.parts[0].removesuffix(".rs")


def graph(src: Path) -> dict[str, set[str]]:
    g: dict[str, set[str]] = {}
    for f in sorted(src.rglob("*.rs")):
        m = module_of(src, f)
        text = strip_tests(f.read_text())
        deps = set(re.findall(r"crate::([a-z_][a-z0-9_]*)", text))
        for group in re.findall(r"use crate::\{([^}]*)\}", text):
            deps |= set(re.findall(r"(?:^|[\s,])([a-z_][a-z0-9_]*)(?=::|\s*[,}]|$)", group))
        deps = {d for d in deps if (src / f"{d}.rs").exists() or (src / d).is_dir()}
        g.setdefault(m, set()).update(deps - {m})
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    # Tarjan's strongly connected components; every component of more than one module is a cycle.
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g.get(v, ())):
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
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def main() -> int:
    bad = 0
    for crate, src in CRATES.items():
        g = graph(src)
        for c in cycles(g):
            print(f"{crate}: modules import each other in a circle: {' -> '.join(c)}")
            bad += 1
    # Nothing imports back up into the phone client's facade: the feature modules are below it.
    # `simulate` is the one driver above it (a walk replayed through the facade's own calls).
    src = CRATES["tessera-core"]
    for f in sorted(src.rglob("*.rs")):
        m = module_of(src, f)
        if m in ("<root>", "simulate"):
            continue
        if re.search(r"\b(crate|super)::Tessera\b", strip_tests(f.read_text())):
            print(f"tessera-core: {f.relative_to(ROOT)} imports the facade (Tessera) back up")
            bad += 1
    # The server's business rules, its HTTP side and its storage trait are backend-neutral: only
    # the SQLite backend (server/src/storage/sqlite/) speaks rusqlite.
    server = ROOT / "server/src"
    neutral = [server / "routes", server / "service", server / "conformance",
               server / "storage/mod.rs", server / "storage/repo.rs", server / "problem.rs",
               server / "guard.rs", server / "auth.rs", server / "push.rs", server / "lib.rs"]
    for place in neutral:
        for f in sorted([place] if place.is_file() else place.rglob("*.rs")):
            if re.search(r"\brusqlite\b", strip_tests(f.read_text())):
                print(f"tessera-server: {f.relative_to(ROOT)} uses rusqlite (only storage/sqlite may)")
                bad += 1
    # The business rules know nothing of HTTP or of a backend: no axum, no routes, no SQLite
    # backend (they speak to storage::repo::Repo); the storage speaks no HTTP and runs no rule.
    forbidden = {
        server / "service": (r"\baxum\b|crate::routes|crate::storage::sqlite|\bProblem\b",
                             "HTTP or the SQLite backend"),
        server / "storage": (r"\baxum\b|crate::routes|crate::problem|\bProblem\b",
                             "HTTP"),
    }
    for place, (pattern, what) in forbidden.items():
        for f in sorted(place.rglob("*.rs")):
            if re.search(pattern, strip_tests(f.read_text())):
                print(f"tessera-server: {f.relative_to(ROOT)} speaks {what}")
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
