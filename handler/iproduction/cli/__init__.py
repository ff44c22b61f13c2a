"""``iproduction``, the operator's command line (``python -m iproduction.cli`` from ``handler/``).

Not part of the function's package: it needs ``alibabacloud-credentials`` (requirements-dev.txt),
and deploy/build.sh leaves it out.
"""
