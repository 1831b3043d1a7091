"""placeholder"""
from typing import Any
__all__ = ["bench_api"]
def bench_api(settings: Any) -> dict[str, Any]:
    raise NotImplementedError
