"""A second module in the fixture code root (checks that fresh instances re-import it)."""

VALUE = "helper-v1"
