"""Function Compute entry points (code root ``handler/``): ``index.initialize`` and ``index.handler``.

The work is done in the ``iproduction`` package next to this file; see ``iproduction/app.py``.
"""

from iproduction.app import handler, initialize

__all__ = ["handler", "initialize"]
