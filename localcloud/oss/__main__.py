"""``python -m localcloud.oss``: run the OSS emulator in the foreground."""

from .cli import main

raise SystemExit(main())
