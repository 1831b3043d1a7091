"""docker-compose.yml uses the same settings names as a local run (no Docker engine here)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel

from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _env_names(model: type[BaseModel], prefix: str = "LVLUP_") -> set[str]:
    names: set[str] = set()
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            names |= _env_names(ann, f"{prefix}{name.upper()}__")
        else:
            names.add(f"{prefix}{name.upper()}")
    return names


def test_compose_environment_names_are_settings():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    known = _env_names(Settings)
    used = {
        key
        for svc in compose["services"].values()
        for key in (svc.get("environment") or {})
        if key.startswith("LVLUP_")
    }
    assert used, "the platform service sets no LVLUP_ variables"
    assert used <= known, f"unknown settings names: {sorted(used - known)}"
    # the platform points at the compose services, not at embedded ones
    assert {"LVLUP_KAFKA__BOOTSTRAP_SERVERS", "LVLUP_POSTGRES__URL",
            "LVLUP_CLICKHOUSE__URL"} <= used


def test_compose_declares_the_stack():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert {"kafka", "postgres", "clickhouse", "lvlup"} <= set(compose["services"])
