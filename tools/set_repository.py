"""Point the book at the GitHub repository that hosts it.

The repository is named in one place, ``repository.url`` in ``_config.yml``; the launch buttons
read it from there. Each chapter's hidden install cell must carry the same URL as a literal,
because in Colab that cell runs before anything of the repository is installed, and the README and
the landing page link to the published book (``https://OWNER.github.io/NAME/``) and to Colab
(``colab.research.google.com/github/OWNER/NAME/...``); the README and the book's installation page
give the pip command (``git+https://github.com/OWNER/NAME``). This script sets all of them, and
``--check`` tells whether they agree (a test runs it).

    python tools/set_repository.py OWNER/NAME   # the publish workflow passes ${{ github.repository }}
    python tools/set_repository.py --check      # exit 1, naming each chapter that disagrees
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


def mismatches(root: Path = ROOT) -> list[str]:
    """One line per chapter whose install cell does not name the configured repository (or names none)."""
    want, bad = configured(root), []
    for nb in notebooks(root):
        found = set(INSTALL_URL.findall(nb.read_text()))
        if found != {want}:
            bad.append(f"{nb.relative_to(root)}: installs from {sorted(found) or 'nothing'}, _config.yml names {want}")
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


def set_repository(repo: str, root: Path = ROOT) -> list[Path]:
    """Write OWNER/NAME into _config.yml and every chapter's install cell; returns the files changed."""
    if not REPO.match(repo):
        raise ValueError(f"expected a GitHub repository as OWNER/NAME (e.g. ddpm-edu/ddpm-edu), got {repo!r}")
    edits = [(root / "_config.yml", CONFIG_URL, rf"\g<1>https://github.com/{repo}")]
    edits += [(nb, INSTALL_URL, f"git+https://github.com/{repo}") for nb in notebooks(root)]
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
    ap.add_argument("--check", action="store_true", help="only check that the install cells and links match _config.yml")
    ap.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.check == bool(args.repo):
        ap.error("give either OWNER/NAME or --check")
    if args.check:
        bad = mismatches(args.root)
        print("\n".join(bad) or f"every install cell installs from {configured(args.root)}")
        return 1 if bad else 0
    try:
        changed = set_repository(args.repo, args.root)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{len(changed)} files now name {args.repo}" if changed else f"already {args.repo}: nothing changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
