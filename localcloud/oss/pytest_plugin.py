"""pytest fixtures for the OSS emulator (being written)."""
