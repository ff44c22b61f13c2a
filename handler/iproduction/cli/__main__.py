"""``python -m iproduction.cli``."""

from .main import entry

entry()
