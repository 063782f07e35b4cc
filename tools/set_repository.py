"""Point the book at the GitHub repository that hosts it.

The repository is named in one place, ``repository.url`` in ``_config.yml``; the launch buttons
read it from there. Each chapter's hidden install cell must carry the same URL as a literal,
because in Colab that cell runs before anything of the repository is installed, and the README and
the landing page link to the published book (``https://OWNER.github.io/NAME/``) and to Colab
(``colab.research.google.com/github/OWNER/NAME/...``); the README and the book's installation page
give the pip command (``git+https://github.com/OWNER/NAME``). This script sets all of them, and
``--check`` tells whether they agree (a test runs it).

``--ref`` pins the install cells, and only them, to one commit (or tag): ``...OWNER/NAME@REF``. The
publish workflow passes the commit it builds, so the chapters that the published book offers
install the library that their pages were built with, not a newer one. The notebooks of a
checkout name no ref: there the library is already installed and the install cell does nothing,
and a chapter opened from ``main`` installs ``main``. ``--check`` accepts either, as long as every
chapter names the same ref.

    python tools/set_repository.py OWNER/NAME               # the workflow passes ${{ github.repository }}
    python tools/set_repository.py OWNER/NAME --ref SHA     # ... and, to publish, ${{ github.sha }}
    python tools/set_repository.py --check                  # exit 1, naming each chapter that disagrees
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?/[A-Za-z0-9._-]+$")  # GitHub's owner/name
CONFIG_URL = re.compile(r"^(  url: )https://github\.com/(\S+)$", re.MULTILINE)  # under `repository:`
INSTALL_URL = re.compile(r"git\+https://github\.com/([^\"\\\s@]+)")  # in the install cell's pip argument
PINNED_URL = re.compile(r"git\+https://github\.com/([^\"\\\s@]+)(?:@([^\"\\\s]+))?")  # the same, with its @REF if any
REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*$")  # a commit, tag or branch as pip's @REF takes it
COLAB_URL = re.compile(r"colab\.research\.google\.com/github/([^/\s]+/[^/\s]+)/")  # a link that opens a chapter in Colab
PAGES_URL = re.compile(r"https://([A-Za-z0-9-]+\.github\.io/[A-Za-z0-9._-]+)/")  # the published book
LINK_PAGES = {"README.md": ("colab", "pages", "install"), "book/index.md": ("colab",),  # which links each page carries
              "book/using/install.md": ("install",)}


def _links(repo: str) -> dict[str, tuple[re.Pattern, str, str]]:
    """kind -> (pattern, what its group must read for repo, the replacement that makes it so)."""
    return {"colab": (COLAB_URL, repo, f"colab.research.google.com/github/{repo}/"),
            "pages": (PAGES_URL, pages_site(repo), f"https://{pages_site(repo)}/"),
            "install": (INSTALL_URL, repo, f"git+https://github.com/{repo}")}


def notebooks(root: Path = ROOT) -> list[Path]:
    """The book's notebooks, each with an install cell: the chapters and the notebook pages of "Using the library"."""
    return sorted([*(root / "book").glob("*.ipynb"), *(root / "book" / "using").glob("*.ipynb")])


def configured(root: Path = ROOT) -> str:
    """The OWNER/NAME of ``repository.url`` in ``_config.yml``."""
    m = CONFIG_URL.search((root / "_config.yml").read_text())
    if m is None:
        raise SystemExit(f"{root / '_config.yml'}: no `  url: https://github.com/OWNER/NAME` line under repository:")
    return m.group(2)


def install_refs(root: Path = ROOT) -> dict[str, set[str]]:
    """{chapter: the @REFs its install cell names}; an empty string stands for no ref (the default branch)."""
    return {str(nb.relative_to(root)): {ref for _, ref in PINNED_URL.findall(nb.read_text())}
            for nb in notebooks(root)}


def mismatches(root: Path = ROOT) -> list[str]:
    """One line per chapter whose install cell does not name the configured repository (or names none),
    and one if the chapters' install cells do not all name the same ref."""
    want, bad = configured(root), []
    for nb in notebooks(root):
        found = set(INSTALL_URL.findall(nb.read_text()))
        if found != {want}:
            bad.append(f"{nb.relative_to(root)}: installs from {sorted(found) or 'nothing'}, _config.yml names {want}")
    refs = install_refs(root)
    if len(set().union(*refs.values())) > 1:
        shown = {nb: sorted(r or "(none)" for r in rs) for nb, rs in refs.items()}
        bad.append(f"the install cells name different refs: {shown}")
    for page, kinds in LINK_PAGES.items():
        text = (root / page).read_text()
        for kind in kinds:
            pattern, expected, _ = _links(want)[kind]
            found = set(pattern.findall(text))
            if found != {expected}:
                bad.append(f"{page}: links to {sorted(found) or 'nothing'}, _config.yml implies {expected}")
    return bad


def pages_site(repo: str) -> str:
    """GitHub Pages' address of OWNER/NAME, without the scheme: owner.github.io/NAME (owners are lower-cased)."""
    owner, name = repo.split("/")
    return f"{owner.lower()}.github.io/{name}"


def set_repository(repo: str, root: Path = ROOT, ref: str | None = None) -> list[Path]:
    """Write OWNER/NAME into _config.yml and every chapter's install cell, and the install cells' @ref
    (None: no ref, so they install the default branch); returns the files changed."""
    if not REPO.match(repo):
        raise ValueError(f"expected a GitHub repository as OWNER/NAME (e.g. ddpm-edu/ddpm-edu), got {repo!r}")
    if ref is not None and (not REF.match(ref) or ".." in ref):
        raise ValueError(f"expected a commit, tag or branch for the ref (e.g. a 40-digit SHA), got {ref!r}")
    edits = [(root / "_config.yml", CONFIG_URL, rf"\g<1>https://github.com/{repo}")]
    pinned = f"git+https://github.com/{repo}" + (f"@{ref}" if ref else "")
    edits += [(nb, PINNED_URL, pinned) for nb in notebooks(root)]
    for page, kinds in LINK_PAGES.items():
        for kind in kinds:
            pattern, _, replacement = _links(repo)[kind]
            edits.append((root / page, pattern, replacement))
    new_texts: dict[Path, str] = {}
    for path, pattern, replacement in edits:  # read and check everything before writing anything
        text, n = pattern.subn(replacement, new_texts.get(path, path.read_text()))
        if n == 0:
            raise ValueError(f"{path}: found no {pattern.pattern!r} to replace")
        new_texts[path] = text
    changed = [p for p, t in new_texts.items() if t != p.read_text()]
    for p in changed:
        p.write_text(new_texts[p])
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("repo", nargs="?", help="OWNER/NAME of the hosting repository")
    ap.add_argument("--ref", help="pin the install cells to this commit (or tag); without it they name no ref")
    ap.add_argument("--check", action="store_true", help="only check that the install cells and links match _config.yml")
    ap.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.check == bool(args.repo):
        ap.error("give either OWNER/NAME or --check")
    if args.check and args.ref:
        ap.error("--ref goes with OWNER/NAME, not with --check")
    if args.check:
        bad = mismatches(args.root)
        refs = set().union(*install_refs(args.root).values()) - {""}
        print("\n".join(bad) or f"every install cell installs from {configured(args.root)}"
              + (f" at {refs.pop()}" if refs else ""))
        return 1 if bad else 0
    try:
        changed = set_repository(args.repo, args.root, args.ref)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    target = args.repo + (f"@{args.ref}" if args.ref else "")
    print(f"{len(changed)} files now name {target}" if changed else f"already {target}: nothing changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
