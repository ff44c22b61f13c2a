"""Shared pytest setup: the emulators' fixtures come from their own plugins."""

pytest_plugins = ["localcloud.oss.pytest_plugin", "localcloud.mps.pytest_plugin"]
