"""Sphinx hooks for the book's "Using the library" pages and its API reference (loaded by _config.yml).

- Module constants listed in a module's ``__all__`` (``MEASURED``, ``SHAPES``, ``PRESETS``, ...) are
  documented by ``automodule`` even without a ``#:`` comment, so that the API reference lists every
  public name and ``:data:`` references to them resolve. autodoc alone documents only data that carries
  a ``#:`` comment.
- A class's methods that another package defines (matplotlib's generated ``Figure.set``) are left out.
- The role ``{repo}`path``` links to a file of the repository that hosts the book, such as
  ``bench/RESULTS.md``. The address comes from ``repository.url`` and ``repository.branch`` in
  _config.yml, which ``tools/set_repository.py`` keeps in step with the hosting repository, so a fork's
  book links to the fork.
"""

from __future__ import annotations

import inspect
from pathlib import PurePath
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ConfigError
from sphinx.ext.autodoc import DataDocumenter, ModuleDocumenter
from sphinx.ext.extlinks import make_link_role

SHORT_VALUE = 100  # a constant's value is shown when its repr is at most this many characters


class PublicDataDocumenter(DataDocumenter):
    """autodoc's documenter of module data, extended to the undocumented names in ``__all__``."""

    @classmethod
    def can_document_member(cls, member: Any, membername: str, isattr: bool, parent: Any) -> bool:
        if not isinstance(parent, ModuleDocumenter):
            return False
        public = membername in getattr(parent.object, "__all__", ())
        plain = not (inspect.isclass(member) or inspect.isroutine(member) or inspect.ismodule(member))
        return isattr or (public and plain)

    def get_doc(self) -> list[list[str]]:
        # Only a ``#:`` comment documents a constant: the value's own docstring is its type's (dict, tuple).
        comment = self.get_module_comment(self.objpath[-1])
        return [comment] if comment else []

    def add_directive_header(self, sig: str) -> None:
        # A long value (a dict of presets) or a path on the build machine says nothing useful here.
        if isinstance(self.object, PurePath) or len(repr(self.object)) > SHORT_VALUE:
            self.options["no-value"] = True
        super().add_directive_header(sig)


def skip_foreign(app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    """Skip a class's members that another package defines (matplotlib gives a Figure subclass its own ``set``)."""
    module = getattr(obj, "__module__", None)
    if what == "class" and inspect.isroutine(obj) and module and not module.startswith("ddpm_edu"):
        return True
    return None


def add_repo_role(app: Sphinx) -> None:
    """Register ``{repo}`path```: a link to ``path`` in the repository and branch of _config.yml."""
    theme = app.config.html_theme_options
    url, branch = theme.get("repository_url"), theme.get("repository_branch") or "main"
    if not url:
        raise ConfigError("_config.yml: the {repo} role needs repository.url (https://github.com/OWNER/NAME)")
    app.add_role("repo", make_link_role("repo", f"{url.rstrip('/')}/blob/{branch}/%s", "%s"))


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx.ext.autodoc")
    app.add_autodocumenter(PublicDataDocumenter, override=True)
    app.connect("autodoc-skip-member", skip_foreign)
    app.connect("builder-inited", add_repo_role)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
