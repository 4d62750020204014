#!/usr/bin/env python
"""Thin wrapper over `gan.cli.evaluate` (same options as the console script)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from gan.cli.evaluate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
