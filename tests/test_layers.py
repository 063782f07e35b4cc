"""The package's layers (ddpm_edu/__init__.py): each imports only from the layers above it, with no cycles.

Read from the source with ``ast``, so that imports inside functions count as much as those at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ddpm_edu"

# The layers, from the bottom up; a module may import only from its own layer and those before it.
BASE = {"progress"}  # under everything: the progress bar that the samplers and the trainer share
DERIVATION = {"schedules", "forward", "posterior", "losses", "sampling", "guidance", "analytic", "likelihood"}
LAYERS = ["base", "derivation", "nets", "data", "training", "eval", "lab", "web", "command"]


def layer_of(module: str) -> str:
    """The layer of a dotted module name inside ddpm_edu, e.g. 'ddpm_edu.training.train' -> 'training'."""
    parts = module.split(".")[1:]
    if not parts:
        return "command"  # the package's __init__: the map, which loads the taught API lazily
    if parts[0] in BASE:
        return "base"
    if parts[0] in DERIVATION:
        return "derivation"
    if parts[0] in ("cli", "__main__"):
        return "command"
    if parts[0] in LAYERS:
        return parts[0]
    raise AssertionError(f"{module} belongs to no layer: add it to LAYERS or DERIVATION in {__file__}")


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, root: Path) -> set[str]:
    """The ddpm_edu modules that a file imports (relative imports resolved), anywhere in the file."""
    me = module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == root.name}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != root.name:
                continue
            for a in node.names:  # `from ddpm_edu.training import checkpoint` imports a module
                sub = f"{mod}.{a.name}"
                found.add(sub if (root.parent / (sub.replace(".", "/") + ".py")).is_file()
                          or (root.parent / sub.replace(".", "/")).is_dir() else mod)
    found.discard(me)
    return found


def graph(root: Path) -> dict[str, set[str]]:
    return {module_name(p, root): imports(p, root) for p in sorted(root.rglob("*.py"))}


def violations(root: Path) -> list[str]:
    """Every import that points down the layers, and every import cycle."""
    g = graph(root)
    bad = []
    for mod, deps in g.items():
        for dep in sorted(deps):
            if dep.split(".")[0] != root.name:
                continue
            # a subpackage's __init__ (ddpm_edu.data) is part of that layer
            if LAYERS.index(layer_of(dep)) > LAYERS.index(layer_of(mod)):
                bad.append(f"{mod} ({layer_of(mod)}) imports {dep} ({layer_of(dep)}), a layer below it")
    bad += [f"import cycle: {' -> '.join(c)}" for c in cycles(g)]
    return bad


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan's algorithm)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in g:
                continue
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
                out.append(sorted(comp) + [sorted(comp)[0]])

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_package_keeps_its_layers():
    assert violations(PACKAGE) == []


def test_every_module_has_a_layer():
    for mod in graph(PACKAGE):
        layer_of(mod)


def _copy(tmp_path: Path) -> Path:
    import shutil

    root = tmp_path / "ddpm_edu"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__", "*.js", "*.yml"))
    return root


def test_a_planted_downward_import_fails(tmp_path):
    root = _copy(tmp_path)
    f = root / "schedules.py"
    f.write_text(f.read_text() + "\n\ndef _planted():\n    from ddpm_edu.training.guard import NonFiniteGuard\n")
    assert violations(root) == ["ddpm_edu.schedules (derivation) imports ddpm_edu.training.guard (training), "
                                "a layer below it"]


def test_a_planted_relative_import_fails(tmp_path):
    root = _copy(tmp_path)
    f = root / "data" / "toy.py"
    f.write_text(f.read_text() + "\n\nfrom ..lab import plots  # noqa\n")
    assert "ddpm_edu.data.toy (data) imports ddpm_edu.lab.plots (lab), a layer below it" in violations(root)


def test_a_planted_cycle_fails(tmp_path):
    root = _copy(tmp_path)
    f = root / "forward.py"
    f.write_text(f.read_text() + "\n\nfrom ddpm_edu.losses import l_simple  # noqa\n")
    found = violations(root)
    assert len(found) == 1 and found[0].startswith("import cycle:") and "ddpm_edu.forward" in found[0]
    assert "ddpm_edu.losses" in found[0]


@pytest.mark.parametrize("module", sorted(DERIVATION & {p.stem for p in PACKAGE.glob("*.py")}))
def test_the_derivation_imports_only_torch_numpy_and_itself(module):
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    allowed = {"torch", "numpy", "ddpm_edu", "__future__", "math", "numbers", "dataclasses", "typing",
               "collections", "functools", "itertools",
               "tqdm"}  # tqdm: the samplers' optional progress bar
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
        for n in names:
            assert n.split(".")[0] in allowed, f"ddpm_edu.{module} imports {n}"


def test_the_map_re_exports_the_taught_api_lazily():
    """``import ddpm_edu`` and ``ddpm-edu --help`` load no torch; the taught names resolve on first use."""
    import subprocess
    import sys

    probe = ("import sys, ddpm_edu, ddpm_edu.cli; from ddpm_edu.training.configs import preset_names; preset_names(); "
             "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
    import ddpm_edu
    from ddpm_edu import forward, losses, posterior, sampling, schedules

    assert ddpm_edu.Schedule is schedules.Schedule and ddpm_edu.q_sample is forward.q_sample
    assert ddpm_edu.q_posterior is posterior.q_posterior and ddpm_edu.l_simple is losses.l_simple
    assert ddpm_edu.sample is sampling.sample and ddpm_edu.ddim_sample is sampling.ddim_sample
    assert set(ddpm_edu.__all__) <= set(dir(ddpm_edu))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        ddpm_edu.nothing  # noqa: B018
