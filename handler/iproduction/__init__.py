"""Collects the results of Alibaba Cloud MPS intelligent-production jobs into a destination bucket."""
