"""Function Compute entry points (code root ``handler/``): ``index.initialize``, ``index.handler`` and
``index.pre_stop`` (the preStop hook); the work is done in the ``iproduction`` package, see ``iproduction/app.py``."""

from iproduction.app import handler, initialize, pre_stop

__all__ = ["handler", "initialize", "pre_stop"]
