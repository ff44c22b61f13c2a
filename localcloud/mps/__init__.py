"""Local emulator of Alibaba Cloud MPS (``mts`` 2014-06-18) intelligent-production job APIs."""

from .admin import MpsAdmin
from .client import MpsApiError, MpsClient
from .server import MpsEmulator

__all__ = ["MpsAdmin", "MpsApiError", "MpsClient", "MpsEmulator"]
