"""scikit-learn's linear models computed directly: the decision function X @ coef_.T + intercept_
and, from it, the predicted class or value and logistic regression's probabilities, as
scikit-learn derives them.

The products are summed by einsum, the same way for every row whatever the batch: a BLAS
matrix product (scikit-learn's) rounds a row differently in batches of different sizes, and
batching must not change an answer. The scores then differ from scikit-learn's in the last bits
at most, which the verification's tolerances allow for.

For a model of a few features the arithmetic is nothing; what a call costs is the machinery
around it: scikit-learn validates its input on every call (about 100 µs), ONNX Runtime has a
fixed cost per run (10 µs in a tight loop, 20 to 30 µs between requests, when its code is no
longer in the processor's caches), against 3 to 5 µs here. Like ONNX Runtime, it is used only
once it agrees with the model on the verification sample (cairn.serving.runtime.verify).
"""

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit  # type: ignore[import-untyped]

from cairn.training.signature import PREDICT, PREDICT_PROBA, Signature

Probabilities = Callable[[NDArray[Any]], NDArray[Any]]


class NotLinear(Exception):
    """The model is not one this runtime computes."""


def _models() -> tuple[type, ...]:
    # Exactly these classes (not subclasses): their predict is the decision function, and
    # LogisticRegression's predict_proba one of the two forms below.
    from sklearn.linear_model import (  # type: ignore[import-untyped]
        ElasticNet,
        Lasso,
        LinearRegression,
        LogisticRegression,
        Ridge,
        RidgeClassifier,
    )

    return (LogisticRegression, RidgeClassifier, LinearRegression, Ridge, Lasso, ElasticNet)


def is_linear(estimator: Any) -> bool:
    return type(estimator) in _models()


class LinearRuntime:
    name = "linear"
    single_threaded = True  # einsum computes on the calling thread

    def __init__(
        self,
        coef: NDArray[Any],
        intercept: NDArray[Any] | float,
        classes: NDArray[Any] | None,
        probabilities: Probabilities | None = None,
    ) -> None:
        self._coef = coef
        self._intercept = intercept
        self._classes = classes
        self.probabilities = probabilities

    def scores(self, rows: NDArray[Any]) -> NDArray[Any]:
        """The decision function, shaped as scikit-learn's (one column: a vector)."""
        product = "ij,kj->ik" if self._coef.ndim == 2 else "ij,j->i"
        scores: NDArray[Any] = np.einsum(product, rows, self._coef) + self._intercept
        if self._classes is not None and scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores.reshape(-1)
        return scores

    def predict(self, rows: NDArray[Any], outputs: Iterable[str]) -> dict[str, NDArray[Any]]:
        scores = self.scores(rows)
        result: dict[str, NDArray[Any]] = {}
        for output in outputs:
            if output == PREDICT:
                if self._classes is None:
                    result[output] = scores
                else:  # LinearClassifierMixin.predict
                    indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(1)
                    result[output] = self._classes.take(indices, axis=0)
            elif output == PREDICT_PROBA and self.probabilities is not None:
                result[output] = self.probabilities(scores)
        return result


def one_vs_rest(scores: NDArray[Any]) -> NDArray[Any]:
    """LogisticRegression's one-vs-rest probabilities: each class's logistic, normalized."""
    probabilities: NDArray[Any] = expit(scores)
    if probabilities.ndim == 1:
        return np.vstack([1 - probabilities, probabilities]).T
    probabilities /= probabilities.sum(axis=1).reshape((probabilities.shape[0], -1))
    return probabilities


def multinomial(scores: NDArray[Any]) -> NDArray[Any]:
    """LogisticRegression's multinomial probabilities: the softmax of the scores."""
    if scores.ndim == 1:
        scores = np.c_[-scores, scores]
    exponentials: NDArray[Any] = np.exp(scores - scores.max(axis=1).reshape((-1, 1)))
    exponentials /= exponentials.sum(axis=1).reshape((-1, 1))
    return exponentials


def linear_runtime(
    estimator: Any, signature: Signature, sample: NDArray[Any], atol: float
) -> LinearRuntime:
    """The runtime for `estimator`, with LogisticRegression's probabilities in whichever form
    its own predict_proba takes on `sample` (within `atol`); NotLinear for any other model."""
    if not is_linear(estimator):
        raise NotLinear(f"{type(estimator).__name__} is not one of scikit-learn's linear models")
    inputs = signature["inputs"]
    if len(inputs) != 1 or inputs[0]["datatype"] in ("BYTES", "BOOL"):
        raise NotLinear("only models of one numeric input are computed directly")
    coef = getattr(estimator, "coef_", None)
    if not isinstance(coef, np.ndarray) or coef.dtype.kind != "f":
        raise NotLinear("its coefficients are not a dense array (sparsified?)")
    intercept = np.asarray(estimator.intercept_)
    classes = getattr(estimator, "classes_", None)
    runtime = LinearRuntime(coef, intercept, classes)
    if PREDICT_PROBA in {tensor["name"] for tensor in signature["outputs"]}:
        if not hasattr(estimator, PREDICT_PROBA):
            raise NotLinear("the signature has probabilities the model does not give")
        want = estimator.predict_proba(sample)
        scores = runtime.scores(sample)
        for form in (multinomial, one_vs_rest):
            got = form(scores)
            if got.shape == want.shape and np.abs(got - want).max(initial=0.0) <= atol:
                runtime.probabilities = form
                break
        else:
            raise NotLinear("its probabilities are neither the multinomial nor one-vs-rest form")
    return runtime
