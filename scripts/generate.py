#!/usr/bin/env python3
"""Generate an image grid or a latent walk from an export; see `gan-generate --help`.

    python scripts/generate.py --run runs/small --class cat --count 16 --seed 42 --out cats.png
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from gan.cli.generate import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
