"""pytest fixtures for the MPS emulator (being written)."""
