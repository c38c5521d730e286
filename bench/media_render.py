"""The media function's processing of one upload (PillowRenderer.render: decode, orient,
convert, the two WebP variants), by photo size, beside the same render decoding the JPEG at
full scale (the reference, measured in the same run): time and peak memory. Each render runs in
a fresh interpreter, so its peak RSS is its own (less the interpreter's and the input's,
measured in that process just before: Linux's VmHWM, reset through /proc/self/clear_refs).

    .venv/bin/python -m bench.media_render [--repeats N]

Writes bench/results/media-render-latest.json. Needs no store. The Lambda function has 1024 MB
(template.yaml's MediaFunction); MEDIA_MAX_PIXELS is 40 MP, so the largest size here is the
largest taken.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "results" / "media-render-latest.json"
SIZES = ((1600, 1200), (4000, 3000), (8000, 5000))  # 1.9, 12 and 40 megapixels

PROBE = """
import json, sys, time
from feed_adapters.images.pillow_renderer import PillowRenderer
from newsfeed.media.processing import VARIANT_SPECS, ImageLimits

def status_mb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

data = open(sys.argv[1], "rb").read()
renderer = PillowRenderer(reduced_jpeg_decode=sys.argv[2] == "reduced")
limits = ImageLimits(40_000_000, 200, 100_000_000)
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) starts again from here
before = status_mb("VmRSS")
t0 = time.perf_counter()
out = renderer.render(data, "image/jpeg", VARIANT_SPECS, limits)
seconds = time.perf_counter() - t0
peak = status_mb("VmHWM")
print(json.dumps({"ms": seconds * 1000, "peak_mb": peak, "added_mb": peak - before,
                  "variants": [[v.name, v.width, v.height, len(v.data)] for v in out.variants]}))
"""

PHOTO = """
import io, sys
from PIL import Image
width, height = int(sys.argv[2]), int(sys.argv[3])
# Noise compresses like detail, not like a flat colour: a photo-like JPEG.
bands = [Image.effect_noise((width, height), s).convert("L") for s in (40, 60, 80)]
Image.merge("RGB", bands).save(sys.argv[1], "JPEG", quality=90)
"""


def run_once(path: Path, mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in SIZES:
            path = Path(tmp) / f"{width}x{height}.jpg"
            # Made in another process: a child starts with its parent's peak memory.
            subprocess.run(
                [sys.executable, "-c", PHOTO, str(path), str(width), str(height)],
                check=True,
                timeout=300,
            )
            row: dict[str, Any] = {
                "size": f"{width}x{height}",
                "megapixels": round(width * height / 1e6, 1),
                "jpeg_mb": round(path.stat().st_size / 1e6, 1),
            }
            # Interleaved, so drift of the machine falls on both alike.
            runs: dict[str, list[dict[str, Any]]] = {"reduced": [], "full": []}
            for _ in range(args.repeats):
                for mode in runs:
                    runs[mode].append(run_once(path, mode))
            for mode, samples in runs.items():
                row[mode] = {
                    "ms_median": round(statistics.median(s["ms"] for s in samples), 1),
                    # What the render adds to the process (the input bytes already read).
                    "added_mb_max": round(max(s["added_mb"] for s in samples), 1),
                    "peak_rss_mb_max": round(max(s["peak_mb"] for s in samples), 1),
                }
            row["variants"] = runs["reduced"][0]["variants"]
            rows.append(row)
            print(json.dumps(row), flush=True)
    OUT.write_text(json.dumps({"repeats": args.repeats, "rows": rows}, indent=2) + "\n")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
