"""Typed client for the MPS emulator's admin API (works for in-thread and separate-process emulators)."""

from __future__ import annotations

from typing import Any

from ..common import AdminClient


class MpsAdmin(AdminClient):
    """``MpsAdmin(emulator.url)``: seed jobs, move them between states, read call statistics."""

    def jobs(self) -> dict[str, dict[str, Any]]:
        return self.call("GET", "jobs")["jobs"]

    def put_job(self, job_id: str, job: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Create or replace a job (fields as in a seed file; ``Result`` as object or string)."""
        return self.call("PUT", f"jobs/{job_id}", {**(job or {}), **fields})["job"]

    def update_job(self, job_id: str, **fields: Any) -> dict[str, Any]:
        """Merge fields into an existing job."""
        return self.call("PATCH", f"jobs/{job_id}", fields)["job"]

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        response = self._http.get(f"jobs/{job_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()["job"]

    def set_state(self, job_id: str, state: str, result: Any = None) -> dict[str, Any]:
        """Move a job to ``state``; ``result`` (object or JSON string) replaces its ``Result``."""
        fields: dict[str, Any] = {"State": state}
        if result is not None:
            fields["Result"] = result
        return self.update_job(job_id, **fields)

    def delete_job(self, job_id: str) -> bool:
        return bool(self.call("DELETE", f"jobs/{job_id}")["deleted"])

    def clear_jobs(self) -> int:
        return int(self.call("DELETE", "jobs")["deleted"])

    def seed(self, document: dict[str, Any]) -> int:
        """Add the jobs of a seed document; returns how many."""
        return int(self.call("POST", "seed", document)["jobs"])

    def stats(self) -> dict[str, Any]:
        """``calls``/``accepted`` per action, ``throttled``, ``errors``, ``max_calls_per_second``..."""
        return self.call("GET", "stats")

    def reset_stats(self) -> None:
        self.call("DELETE", "stats")

    def settings(self, **changes: Any) -> dict[str, Any]:
        """Read or change emulator settings (``qps``, ``retry_after``, ``unknown_job``...)."""
        return self.knobs(settings=changes)["settings"] if changes else self.knobs()["settings"]

    def faults(self, *rules: dict[str, Any]) -> None:
        """Replace the fault rules, e.g. ``faults({"op": "*", "kind": "503", "times": 2})``."""
        self.knobs(faults=list(rules))
