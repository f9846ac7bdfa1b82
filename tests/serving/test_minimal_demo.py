"""The minimal demo of chapter 9: built around a model, launched on a free local port and asked
over HTTP with gradio_client, as the chapter does; its answer is the Predictor's."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import toy_data
from PIL import Image

from idc_utils.core import ports
from idc_utils.serving.app import minimal
from idc_utils.serving.predictor import Predictor


@pytest.fixture(scope="module")
def running_demo(untrained_model):
    demo = minimal.minimal_demo(untrained_model)
    port = ports.free_port()
    demo.launch(server_port=port, prevent_thread_lock=True, quiet=True, inline=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def test_the_minimal_demo_answers_as_the_predictor_does(running_demo, untrained_model, tmp_path):
    from gradio_client import Client, handle_file

    pred = Predictor.load(untrained_model)
    images, _ = toy_data(8)
    client = Client(running_demo, verbose=False)
    assert set(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == {
        "/classify"
    }
    for k in range(2):
        path = tmp_path / f"patch{k}.png"
        Image.fromarray(images[k]).save(path)
        probs, call = client.predict(handle_file(str(path)), api_name="/classify")
        expected = float(pred.probabilities(images[k][None])[0])
        got = {c["label"]: c["confidence"] for c in probs["confidences"]}
        assert got["IDC+"] == pytest.approx(expected, abs=1e-5)
        assert got["IDC-"] == pytest.approx(1 - expected, abs=1e-5)
        assert probs["label"] == ("IDC+" if expected >= 0.5 else "IDC-")  # Label: the larger
        assert call.startswith("IDC+" if expected >= pred.threshold else "IDC-")
        assert f"{pred.threshold:.3f}" in call


def test_the_minimal_demo_reads_a_patch_as_predict_does(running_demo, untrained_model, tmp_path):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    pred = Predictor.load(untrained_model)
    client = Client(running_demo, verbose=False)
    gray = tmp_path / "gray.png"  # converted to RGB, as training converted such patches
    Image.fromarray(np.full((50, 50), 120, np.uint8)).save(gray)
    probs, _ = client.predict(handle_file(str(gray)), api_name="/classify")
    expected = float(pred.probabilities(np.full((1, 50, 50, 3), 120, np.uint8))[0])
    got = {c["label"]: c["confidence"] for c in probs["confidences"]}
    assert got["IDC+"] == pytest.approx(expected, abs=1e-5)
    big = tmp_path / "big.png"  # larger than a patch: a message, not a crash
    Image.fromarray(np.zeros((300, 300, 3), np.uint8)).save(big)
    with pytest.raises(AppError, match="larger than"):
        client.predict(handle_file(str(big)), api_name="/classify")
