#!/usr/bin/env python
"""Run the benchmarks: a thin wrapper over `gan.cli.bench` (same options as `gan-bench`)."""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from gan.cli.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
