"""Log positions for the replay engine — re-exported from :mod:`streams.offsets`, the one
offsets module (log bounds, offsets at a time, a group's committed offsets)."""

from __future__ import annotations

from streams.offsets import admin_client, committed_offsets, log_bounds, offsets_at, partitions_of

__all__ = ["admin_client", "committed_offsets", "log_bounds", "offsets_at", "partitions_of"]
