"""How fast does the demo answer? The demo runs in its own process (``python -m idc_utils app``),
reached over HTTP with gradio_client, as a browser would reach it:

  * patch round trip: one 50x50 patch uploaded to /classify_patches (with its Grad-CAM), median
    and 90th percentile over repeated requests;
  * tissue throughput: a ~1000x1000 H&E image (tiled from real patches) through /analyze_tissue,
    in tissue tiles per second, against the model's raw forward throughput on the same tiles;
    printed as a ratio (target >= 0.8: tiling, masking and the heatmap cost little).

    python benchmarks/app_latency.py --model runs/sample/models/efficientnet.keras [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np
from PIL import Image

from idc_utils.core import constants, ports
from idc_utils.data import dataset, mosaic
from idc_utils.serving import predictor
from idc_utils.serving.app import tissue_tab, ui


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--model", default=None, help="a .keras model (default: the best of the latest run)"
    )
    ap.add_argument("--data", default=None, help="dataset folder (default: $IDC_DATA_DIR)")
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--side", type=int, default=1000, help="tissue image side in pixels")
    args = ap.parse_args()

    from gradio_client import Client, handle_file

    model = args.model or ui.find_default_model()
    ds = dataset.load_dataset(args.data)
    cells = args.side // constants.PATCH_SIZE
    full = ds.manifest[(ds.manifest.height == 50) & (ds.manifest.width == 50)]
    pick = full.sample(cells * cells, random_state=0, replace=len(full) < cells * cells)
    img = (
        ds.patches(pick)
        .reshape(cells, cells, 50, 50, 3)
        .swapaxes(1, 2)
        .reshape(cells * 50, cells * 50, 3)
    )
    with tempfile.TemporaryDirectory() as tmp:
        tissue = Path(tmp) / "tissue.png"
        Image.fromarray(img).save(tissue)
        patch = Path(tmp) / "patch.png"
        Image.fromarray(ds.patches(pick.iloc[:1])[0]).save(patch)
        # the model's raw speed on the same tiles, measured with the CPU to itself
        pred = predictor.Predictor.load(model)
        tiles, table = mosaic.tile_image(img)
        keep = tiles[table["is_tissue"].to_numpy()]
        pred.probabilities(keep[:128])
        t0 = time.perf_counter()
        pred.probabilities(keep)
        raw = len(keep) / (time.perf_counter() - t0)
        # the app's own pipeline, in process: decode, tiling, tissue mask, scoring, heatmap
        tissue_tab.analyze_tissue_file(pred, tissue)
        t0 = time.perf_counter()
        tissue_tab.analyze_tissue_file(pred, tissue)
        in_process = len(keep) / (time.perf_counter() - t0)
        card = pred.card
        del pred  # free the model before the server process starts
        # the demo as a user runs it: its own process, reached over HTTP
        port = ports.free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "idc_utils", "app", "--model", str(model), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "IDC_BOOK_ROOT": str(Path(__file__).resolve().parent.parent)},
        )
        try:
            client = None
            for _ in range(240):
                try:
                    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                    break
                except Exception:
                    time.sleep(0.5)
            if client is None:
                raise RuntimeError("the demo did not start")
            client.predict([handle_file(str(patch))], api_name="/classify_patches")  # warm up
            client.predict(handle_file(str(tissue)), api_name="/analyze_tissue")
            times = []
            for _ in range(args.requests):
                t0 = time.perf_counter()
                client.predict([handle_file(str(patch))], api_name="/classify_patches")
                times.append(time.perf_counter() - t0)
            round_trips = []
            for _ in range(3):
                t0 = time.perf_counter()
                _, summary = client.predict(handle_file(str(tissue)), api_name="/analyze_tissue")
                round_trips.append(time.perf_counter() - t0)
            round_trip = min(round_trips)
        finally:
            server.terminate()
            server.wait(30)
    end_to_end = len(keep) / round_trip
    print(
        f"model {Path(model).name} ({card['backbone']}, {card['image_size']} px), "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"patch round trip (upload, score, Grad-CAM, answer): median "
        f"{1000 * np.median(times):.0f} ms, "
        f"p90 {1000 * np.quantile(times, 0.9):.0f} ms over {args.requests} requests"
    )
    print(
        f"tissue image {img.shape[1]}x{img.shape[0]}: {len(keep)} tissue tiles, whole request "
        f"{round_trip:.2f} s"
    )
    print(f"  tiles/s end to end (HTTP, upload, tiling, mask, scoring, heatmap): {end_to_end:8.0f}")
    print(
        f"  tiles/s the app's pipeline in process (decode, tile, mask, score, heatmap): "
        f"{in_process:8.0f}"
    )
    print(f"  tiles/s model forward alone:                                        {raw:8.0f}")
    print(f"  ratio in-process pipeline / forward: {in_process / raw:.2f}")
    print(
        f"  ratio end-to-end over HTTP / forward: {end_to_end / raw:.2f} (target >= 0.80); the "
        "difference is "
        "Gradio's request cost and moving the image files"
    )
    print(
        "  server's own scoring speed: " + summary.split("tiles scored in ")[-1].split(")")[0] + ")"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
