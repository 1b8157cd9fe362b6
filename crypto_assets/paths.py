"""Where the project's declarative catalog lives (symbols, feeds, sources, replay payloads)."""

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
RESOURCES_DIR = Path(os.environ.get("CRYPTO_RESOURCES_DIR", PROJECT_ROOT / "resources"))
