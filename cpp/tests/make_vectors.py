"""Writes the C++ tests' data from the NumPy reference: cpp/tests/data/{vectors.txt, model.safetensors}.

    python cpp/tests/make_vectors.py [OUT_DIR]

Imports msf from the repository's src/ (no install needed; NumPy only). Seeded, so rerunning it rewrites
the same files: model.safetensors and the inputs byte for byte on any machine, the float64 expected outputs
up to their last digit or two where NumPy's BLAS sums matrix products in another order (another CPU or
BLAS build); tests/test_vectors_fresh.py checks the committed files against a fresh run.

vectors.txt holds named arrays, each as a line `name ndim dim...` followed by its values: kernel inputs
are float32 (written with 9 significant digits, which round-trip exactly), expected outputs are the
reference evaluated in float64 on those inputs (17 digits).
"""
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "src"))

from msf import reference as ref, schema, weights  # noqa: E402
from msf.config import Config  # noqa: E402

# Small but complete: d_t = T//4 < T uses value_reduce, d_c = C leaves it unused; P = 3 joints x 2D.
CONFIG = Config(K=3, Q=4, P=6, C=16, L=2, ffn_hidden=32, d_t=3, d_c=16, se_t=3, se_c=4, reweight_hidden=3)
POSE = {"skeleton": "test3", "joints": ["a", "b", "c"], "dims": 2, "units": "normalized"}


def random_state_dict(config: Config, rng: np.random.Generator) -> dict:
    """Official-layout float32 tensors of sensible scale, with the unused value_reduce the official model keeps."""
    return {k: v.astype(np.float32) for k, v in schema.random_state_dict(config, rng).items()}


class Vectors:
    def __init__(self):
        self.lines = ["# msf C++ test vectors: written by cpp/tests/make_vectors.py from msf.reference; do not edit"]

    def add(self, name: str, array: np.ndarray, digits: int) -> None:
        array = np.asarray(array)
        self.lines.append(" ".join([name, str(array.ndim)] + [str(d) for d in array.shape]))
        flat = [f"{v:.{digits}g}" for v in array.astype(np.float64).ravel()]
        self.lines.extend(" ".join(flat[i:i + 8]) for i in range(0, len(flat), 8))

    def inputs(self, prefix: str, **arrays: np.ndarray) -> list:
        """Adds float32 inputs; returns them as float64 for the reference."""
        out = []
        for name, a in arrays.items():
            a = np.asarray(a, dtype=np.float32)
            self.add(f"{prefix}.{name}", a, 9)
            out.append(a.astype(np.float64))
        return out

    def expected(self, prefix: str, array: np.ndarray) -> None:
        self.add(f"{prefix}.out", array, 17)


def f32(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def synth_params(rng, N, D, d):
    p = {"dense.weight": f32(rng, d, D, scale=D ** -0.5), "dense.bias": f32(rng, d, scale=0.1),
         "se.fc.0.weight": f32(rng, N // 4, N, scale=N ** -0.5), "se.fc.2.weight": f32(rng, N, N // 4, scale=0.5)}
    if d < N:
        p.update({"value_reduce.weight": f32(rng, d, N, scale=N ** -0.5), "value_reduce.bias": f32(rng, d, scale=0.1)})
    return p


def main() -> None:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "data"
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20230601)
    v = Vectors()

    for prefix, (M, K, N, bias) in {"linear": (5, 7, 3, True), "linear_row": (1, 13, 6, True),
                                    "linear_nobias": (4, 9, 6, False)}.items():
        arrays = {"x": f32(rng, M, K), "weight": f32(rng, N, K, scale=K ** -0.5)}
        if bias:
            arrays["bias"] = f32(rng, N)
        got = v.inputs(prefix, **arrays)
        v.expected(prefix, ref.linear(*got))

    a, b = v.inputs("matmul", a=f32(rng, 4, 6), b=f32(rng, 6, 5))
    v.expected("matmul", a @ b)

    # every GEMM version: M, N cover whole register tiles (AVX2 6 x 16, AVX-512 8 x 32) and remainders
    a, b, col_bias, row_bias = v.inputs("gemm", a=f32(rng, 23, 19), b=f32(rng, 19, 37, scale=19 ** -0.5),
                                        col_bias=f32(rng, 37), row_bias=f32(rng, 23))
    v.add("gemm.plain", ref.linear(a, b.T), 17)
    v.expected("gemm", ref.linear(a, b.T, col_bias) + row_bias[:, None])

    w, bias, x = v.inputs("linear_left", weight=f32(rng, 7, 4, scale=0.5), bias=f32(rng, 7), x=f32(rng, 4, 5))
    v.expected("linear_left", np.swapaxes(ref.linear(np.swapaxes(x, 0, 1), w, bias), 0, 1))

    (x,) = v.inputs("gelu", x=np.concatenate([[0.0, -0.0, 0.5, -0.5, 5.0, -5.0], rng.standard_normal(61) * 4]))
    v.expected("gelu", ref.gelu(x))  # 67 values: not a multiple of any vector width
    # checked relative to each value: an atol of max|out| would swallow everything next to 3e38
    (x,) = v.inputs("gelu_edges", x=[1e-30, -1e-30, 1e-40, 40.0, -40.0, -15.0, -9.0, 3e38, -3e38])
    v.expected("gelu_edges", ref.gelu(x))

    x = f32(rng, 6, 9, scale=30)
    x[0] += 1e4  # exp would overflow without the max shift
    x[1, :] = -7.0
    (x,) = v.inputs("softmax", x=x)
    v.expected("softmax", ref.softmax(x))

    # an offset as large as the spread: the float32 mean must not cancel the signal away
    x, w, bias = v.inputs("layer_norm", x=100 + f32(rng, 5, 16, scale=100), weight=1 + f32(rng, 16, scale=0.1),
                          bias=f32(rng, 16, scale=0.1))
    v.expected("layer_norm", ref.layer_norm(x, w, bias))

    e, w1, w2 = v.inputs("se_layer", e=f32(rng, 13, 3), w1=f32(rng, 3, 13, scale=0.3), w2=f32(rng, 13, 3))
    v.expected("se_layer", ref.se_layer(e, w1, w2))

    # reduced (d < N: value_reduce) and full (d == N: the values are the input itself)
    for prefix, (N, D, d) in {"synth_reduced": (13, 16, 3), "synth_full": (16, 13, 16)}.items():
        params = synth_params(rng, N, D, d)
        s, *values = v.inputs(prefix, s=f32(rng, N, D), **params)
        v.expected(prefix, ref.synth_attention(s, dict(zip(params, values))))

    # the model, and its first block's MixSynthAttention on its own
    tensors = random_state_dict(CONFIG, rng)
    metadata = {"format": "msf", "format_version": "1", "config": CONFIG.to_json(), "pose": json.dumps(POSE),
                "source": "cpp/tests/make_vectors.py: random weights"}
    weights.write(out_dir / "model.safetensors", tensors, metadata)
    mix = "encoder.layers.0.synth_att."
    mix_params = {k[len(mix):]: t for k, t in tensors.items() if k.startswith(mix) and "channel.value" not in k}
    z, *values = v.inputs("mix", z=f32(rng, CONFIG.T, CONFIG.C), **mix_params)
    v.expected("mix", ref.mix_synth_attention(z, dict(zip(mix_params, values))))

    (kf,) = v.inputs("model", keyframes=f32(rng, 3, CONFIG.n_keyframes, CONFIG.P, scale=2))
    p64 = {k: t.astype(np.float64) for k, t in tensors.items()}
    v.expected("model", ref.model_forward(kf, p64, CONFIG.L))

    (out_dir / "vectors.txt").write_text("\n".join(v.lines) + "\n")


if __name__ == "__main__":
    main()
