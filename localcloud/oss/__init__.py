"""Local Alibaba Cloud OSS emulator that unmodified ``oss2`` talks to (see README.md here)."""

from .admin import OssAdmin
from .emulator import OssEmulator, OssHandler

__all__ = ["OssAdmin", "OssEmulator", "OssHandler"]
