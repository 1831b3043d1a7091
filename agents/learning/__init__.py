"""Learning orchestration (imperium): registry, sources, cycles, metrics."""

__all__: list[str] = []
