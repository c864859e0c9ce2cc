"""Both backends against the official architecture in PyTorch (tools/torch_model.py, float64), through a
weight file and Refiner.load, on every official configuration and the r_t = 1 / r_c = 8 variants.

    python benchmarks/parity.py

Prints max |msf - torch| / max |torch| per configuration and backend (the contract: <= 1e-5).
"""
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import msf
from msf.config import OFFICIAL_CONFIGS, OFFICIAL_REDUCE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from torch_model import random_model  # noqa: E402

_RT, _RC = OFFICIAL_REDUCE["reduce_token"], OFFICIAL_REDUCE["reduce_channel"]
CONFIGS = {  # (K, Q, P, C, L, reduce_token, reduce_channel): the official ones (msf.config), then variants
    **{name.replace("_pare", "/pare"): (*spec, _RT, _RC) for name, spec in OFFICIAL_CONFIGS.items()},
    "h36m r_t=1": (*OFFICIAL_CONFIGS["h36m"], 1, _RC), "h36m r_c=8": (*OFFICIAL_CONFIGS["h36m"], _RT, 8),
    "aist r_t=1 r_c=8": (*OFFICIAL_CONFIGS["aist"], 1, 8),
}


def main() -> None:
    print("| config | " + " | ".join(msf.backends()) + " |\n| --- |" + " --- |" * len(msf.backends()))
    with tempfile.TemporaryDirectory() as tmp:
        for name, (K, Q, P, C, L, rt, rc) in CONFIGS.items():
            model = random_model(K, Q, P, C, L, reduce_token=rt, reduce_channel=rc, seed=0, dtype=torch.float64)
            path = Path(tmp) / "m.safetensors"
            msf.weights.write(path, {k: v.numpy() for k, v in model.state_dict().items()})
            frames = torch.from_numpy(np.random.default_rng(0).standard_normal((16, K * Q + 1, P)) * 100)
            with torch.no_grad():
                expected = model(frames).numpy()
            errors = [np.abs(msf.Refiner.load(path, backend=b).refine(frames.numpy()[:, ::K]) - expected).max()
                      / np.abs(expected).max() for b in msf.backends()]
            print(f"| {name} | " + " | ".join(f"{e:.1e}" for e in errors) + " |")


if __name__ == "__main__":
    main()
