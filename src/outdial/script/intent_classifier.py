"""Which of a node's intents an answer means, by logistic regression on sentence embeddings.

The nearest single labelled answer (cosine) is brittle both ways: one close example of the
wrong intent wins, and an answer that sits among many examples of one intent, but near none
of them, is a re-ask. A multinomial logistic regression fitted on all of a node's labelled
answers (its phrases, the labelled examples of the intents it listens for, and the answers
that mean none of them as a class of their own) weighs every example at once.

Chosen by two-fold cross-validation on the labelled set's tuning part
(``bench/intent_accuracy.py --cv``, 592 answers, 2026-12-04): 1-nearest 90.5%, 5-nearest vote
90.2%, this regression 93.2% at ``C`` 4 and a 0.4 probability floor, the middle of a plateau
(92.7-93.4% for C 2-8, floors 0.3-0.4). The held-out part and the independent set were not
used to choose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from outdial.errors import OutdialError

INSTALL_HINT = "pip install 'outdial[semantic]'"
# Inverse regularisation strength: see the module docstring for how it was chosen.
DEFAULT_C = 4.0


class ClassifierUnavailable(OutdialError):
    """scikit-learn (the semantic extra) is not installed"""


@dataclass(frozen=True)
class Verdict:
    """The most probable label (an intent, or ``none``), its probability, the probability of
    ``opt_out`` (0 when the node has no opt-out examples) and the cosine similarity of the
    closest labelled answer, whatever its label."""

    label: str
    probability: float
    opt_out: float
    nearest: float


class IntentClassifier:
    """A logistic regression over one node's labelled answers, fitted once at construction.

    ``vectors`` are the answers' sentence embeddings (rows), ``labels`` their labels; a single
    label cannot be told apart from anything, so it always answers that label with the
    closest answer's cosine as its probability.
    """

    def __init__(
        self,
        labels: Sequence[str],
        vectors: Sequence[Sequence[float]],
        *,
        c: float = DEFAULT_C,
        opt_out: str = "opt_out",
    ) -> None:
        try:
            import numpy as np
            from sklearn.linear_model import LogisticRegression
        except ImportError as exc:
            raise ClassifierUnavailable(
                f"intent classification needs scikit-learn: {INSTALL_HINT}"
            ) from exc
        if not labels or len(labels) != len(vectors):
            raise ValueError("an intent classifier needs one label per vector, and some")
        self._np = np
        matrix = np.asarray(vectors, dtype=np.float64)
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        self._unit = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
        self._opt_out = opt_out
        self._classes: list[str] = sorted(set(labels))
        self._model: Any = None
        if len(self._classes) > 1:
            self._model = LogisticRegression(C=c, max_iter=2000).fit(self._unit, list(labels))
            self._classes = [str(x) for x in self._model.classes_]

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self._classes)

    def decide(self, vector: Sequence[float]) -> Verdict:
        np = self._np
        q = np.asarray(vector, dtype=np.float64)
        norm = float(np.linalg.norm(q))
        nearest = float((self._unit @ q).max() / norm) if norm else 0.0
        if self._model is None:
            return Verdict(self._classes[0], max(0.0, nearest), 0.0, nearest)
        probabilities = self._model.predict_proba(q[None, :])[0]
        best = int(np.argmax(probabilities))
        by_class = dict(zip(self._classes, (float(p) for p in probabilities), strict=True))
        return Verdict(
            self._classes[best],
            float(probabilities[best]),
            by_class.get(self._opt_out, 0.0),
            nearest,
        )
