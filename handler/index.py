"""Function Compute entry points (code root ``handler/``): ``index.initialize``, ``index.handler`` and
``index.pre_stop`` (the preStop lifecycle hook: closes the instance's connections).

The work is done in the ``iproduction`` package next to this file; see ``iproduction/app.py``.
"""

from iproduction.app import handler, initialize, pre_stop

__all__ = ["handler", "initialize", "pre_stop"]
