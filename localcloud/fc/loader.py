"""Loading a code root the way the FC Python runtime does, without leaking into the test process.

FC puts the code root first on ``sys.path`` and imports the handler's module. Locally several instances
(and the tests themselves) share one process, so an instance's modules are swapped into ``sys.modules``
(and its root onto ``sys.path``) only while it runs, and swapped out afterwards: whatever had those
names before (e.g. another instance's ``index``) is hidden meanwhile and restored after.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
from collections.abc import Iterator
from types import ModuleType


@functools.lru_cache(maxsize=8192)
def _realpath(path: str) -> str:
    return os.path.realpath(path)


class CodeRoot:
    """The modules one instance imported from its code root (``modules``: name -> module)."""

    def __init__(self, path: str, module_names: list[str]) -> None:
        self.root = os.path.realpath(path)
        self.module_names = list(dict.fromkeys(module_names))
        self.tops = {name.split(".")[0] for name in self.module_names}
        self.modules: dict[str, ModuleType] = {}

    def _under_root(self, path: object) -> bool:
        if not isinstance(path, str) or not path:
            return False
        resolved = _realpath(path)
        return resolved == self.root or resolved.startswith(self.root + os.sep)

    def belongs(self, name: str, module: object) -> bool:
        """A module of this code root: same top-level name as the handler's, or a file under the root."""
        if name == "localcloud" or name.startswith("localcloud."):
            return False
        if name in self.modules or name.split(".")[0] in self.tops:
            return True
        paths = [getattr(module, "__file__", None), *list(getattr(module, "__path__", None) or [])]
        return any(self._under_root(p) for p in paths)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Hide clashing modules, install this instance's, put the root first on sys.path."""
        hidden = {name: module for name, module in list(sys.modules.items()) if self.belongs(name, module)}
        for name in hidden:
            del sys.modules[name]
        sys.modules.update(self.modules)
        sys.path.insert(0, self.root)
        try:
            yield
        finally:
            with contextlib.suppress(ValueError):
                sys.path.remove(self.root)
            ours = {name: module for name, module in list(sys.modules.items()) if self.belongs(name, module)}
            for name in ours:
                del sys.modules[name]
            self.modules = ours
            sys.modules.update(hidden)

    def import_modules(self) -> dict[str, ModuleType]:
        """Fresh imports of the handler/initializer modules (call inside :meth:`active`)."""
        for name in [n for n in sys.modules if n in self.modules]:
            del sys.modules[name]
        self.modules = {}
        importlib.invalidate_caches()
        return {name: importlib.import_module(name) for name in self.module_names}
