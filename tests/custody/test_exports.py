"""Every public name is importable, and every module's ``__all__`` lists only real names."""

from __future__ import annotations

import importlib
import pkgutil

import agents.custody


def test_package_all_names_exist():
    for name in agents.custody.__all__:
        assert hasattr(agents.custody, name), name
    assert len(set(agents.custody.__all__)) == len(agents.custody.__all__)


def test_every_module_all_is_honest():
    modules = [m.name for m in pkgutil.walk_packages(agents.custody.__path__, "agents.custody.")]
    assert "agents.custody.sandbox" in modules and "agents.custody.bank" in modules
    for name in modules:
        module = importlib.import_module(name)
        assert hasattr(module, "__all__"), name
        for public in module.__all__:
            assert hasattr(module, public), f"{name}.{public}"
