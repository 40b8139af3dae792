"""Order of the lab modules: discovery's tests are about the first discovery of a fresh
lab into an empty inventory (every device new, nothing seen before), so they run before
any module that discovers the same session-scoped lab for its own purposes."""

from __future__ import annotations

import pytest

FIRST = ("test_discovery.py",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: 0 if item.path.name in FIRST else 1)  # stable: else as is
