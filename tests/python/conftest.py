"""Python binding tests: the generated module and the library sit in build/bindings/python."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, os.environ.get("TESSERA_PY_BINDINGS", str(ROOT / "build" / "bindings" / "python")))
