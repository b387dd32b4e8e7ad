from __future__ import annotations

from tests.caviar.conftest import digits32

__all__ = ["digits32"]
