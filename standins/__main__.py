"""python -m standins <models dir>: write the tiny stand-in model files, print their names as JSON."""

import json
import sys
from pathlib import Path

from .models import write_model_files

if len(sys.argv) != 2:
    sys.stderr.write("usage: python -m standins <models dir>\n")
    raise SystemExit(2)
sys.stdout.write(json.dumps(write_model_files(Path(sys.argv[1]))) + "\n")
