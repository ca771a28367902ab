"""Cold import time of function_app: the median of N fresh interpreters.

.venv/bin/python bench/import_time.py [--runs 9]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE = "import time; t=time.perf_counter(); import function_app; print(time.perf_counter()-t)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    samples = [
        float(
            subprocess.run(
                [sys.executable, "-c", CODE], cwd=ROOT, check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(args.runs)
    ]
    print(
        f"import function_app: median {statistics.median(samples) * 1000:.0f} ms, "
        f"min {min(samples) * 1000:.0f} ms, max {max(samples) * 1000:.0f} ms ({args.runs} runs)"
    )


if __name__ == "__main__":
    main()
