"""The reliability suite reuses the serving tests' template (small real models and feature
partitions, built once per process) instead of training its own: their support modules
live beside those tests."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "churnloop"))
