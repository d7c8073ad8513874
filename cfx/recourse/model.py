"""The models recourse explains: anything with ``predict_proba`` over the schema's data frame.

scikit-learn pipelines work as they are. A PyTorch module plugs in through
:class:`TorchClassifier`, which pairs it with the encoder that turns the data frame into its input
tensor::

    encoder = make_encoder(schema).fit(X_train)           # any fitted transformer, or a callable
    model = TorchClassifier(net, encoder)                 # net: (B, n_encoded) -> (B, 2) logits
    Recourse(model, schema).fit(X_train).explain(denied)  # "search" (model-agnostic) is used

:func:`model_family` tells ``method="auto"`` what it is looking at: a pipeline ending in a linear
classifier (``"linear"``), in scikit-learn gradient-boosted trees (``"tree"``), or anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, Literal

import numpy as np
import pandas as pd

from cfx.errors import Notice
from cfx.recourse.space import Codec
from cfx.reprs import settings_repr

Family = Literal["linear", "tree", "other"]


class TorchClassifier:
    """``predict_proba`` for a PyTorch module over a data frame, through an encoder.

    ``encoder``: a fitted transformer with ``transform(df)`` (e.g. a ``ColumnTransformer``) or a
    callable ``df -> array (B, n_features)``. ``module`` maps a float tensor ``(B, n_features)``
    (dtype and device of its first parameter) to logits ``(B, 2)`` (softmax) or ``(B,)``/
    ``(B, 1)`` (sigmoid of the approved class). The module is put in ``eval()`` for each call and
    its mode is restored afterwards; gradients are off; nothing else about it changes.
    """

    __repr__ = settings_repr  # the arguments given, defaults left out

    def __init__(self, module: Any, encoder: Any) -> None:
        import torch

        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"`module` must be a torch.nn.Module, got {type(module).__name__}")
        if not (hasattr(encoder, "transform") or callable(encoder)):
            raise TypeError(
                "`encoder` must have a transform(df) method or be a callable df -> array,"
                f" got {type(encoder).__name__}"
            )
        self.module = module
        self.encoder = encoder
        self.classes_ = np.array([0, 1])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities ``(B, 2)`` for the ``B`` rows of ``X``, scikit-learn style:
        column 0 denied, column 1 approved (float64, rows summing to 1)."""
        import torch

        encode: Callable[[pd.DataFrame], Any] = (
            self.encoder.transform if hasattr(self.encoder, "transform") else self.encoder
        )
        features = _dense(encode(X))  # (B, n_features)
        first = next(self.module.parameters(), None)
        dtype = first.dtype if first is not None else torch.float32
        device = first.device if first is not None else torch.device("cpu")
        from cfx.calls import frozen

        with frozen(self.module), torch.no_grad():
            try:
                logits = self.module(torch.as_tensor(features, dtype=dtype, device=device))
            except RuntimeError as err:  # e.g. the encoder's width is not the module's input
                raise ValueError(
                    f"TorchClassifier: the module failed on the encoder's output, shaped "
                    f"{features.shape} (rows, encoded features): {err}"
                ) from err
        if logits.ndim == 2 and logits.shape[1] == 2:
            if len(logits) and bool(
                (logits >= 0).all() and torch.allclose(logits.sum(1), torch.ones(()).to(logits))
            ):
                import warnings

                warnings.warn(
                    "TorchClassifier: the module's outputs are non-negative and their rows sum "
                    "to 1, as a final softmax's would; taken for logits they are softmaxed "
                    "again, which squeezes every probability towards 0.5. Drop the module's "
                    "softmax (it must return logits)",
                    Notice,
                    stacklevel=2,
                )
            p = torch.softmax(logits.double(), dim=1)[:, 1]  # (B,)
        elif logits.ndim == 1 or (logits.ndim == 2 and logits.shape[1] == 1):
            # a sigmoid's outputs all lie in [0, 1]; 16 or more logits rarely all do
            if len(logits) >= 16 and bool(((logits >= 0) & (logits <= 1)).all()):
                import warnings

                warnings.warn(
                    "TorchClassifier: every output of the module's one-column head lies in "
                    "[0, 1], as a sigmoid's would; taken for a logit it goes through a sigmoid "
                    "again, and every probability lands in [0.5, 0.73]. Drop the module's "
                    "sigmoid (it must return the logit)",
                    Notice,
                    stacklevel=2,
                )
            p = torch.sigmoid(logits.double().reshape(-1))  # (B,)
        else:
            raise ValueError(
                f"the module must return logits (B, 2), (B, 1) or (B,), got {tuple(logits.shape)}"
            )
        p_np = p.cpu().numpy()
        return np.stack([1.0 - p_np, p_np], axis=1)  # (B, 2)


def check_probabilities(out: np.ndarray, n: int) -> np.ndarray:
    """``out``, ``model.predict_proba``'s answer for ``n`` rows, if it is ``(n, 2)`` class
    probabilities: finite, in [0, 1], rows summing to 1. Scores or log-odds would otherwise be
    read as probabilities (a plan 'reaching p = 2.3'), and NaN rows as undecided."""
    if out.ndim != 2 or out.shape != (n, 2):
        raise ValueError(
            f"`model.predict_proba` must return (n, 2) probabilities, one column per class, "
            f"for n = {n} rows, got shape {out.shape}"
        )
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        raise ValueError(
            f"`model.predict_proba` returned NaN or infinite values for {int(bad.sum())} of {n} "
            f"rows (first: {np.flatnonzero(bad)[:5].tolist()})"
        )
    if out.min() < -1e-9 or out.max() > 1 + 1e-9 or np.abs(out.sum(axis=1) - 1).max() > 1e-6:
        raise ValueError(
            "`model.predict_proba` must return probabilities in [0, 1] whose rows sum to 1, got "
            f"values {out.min():.4g}..{out.max():.4g} and row sums {out.sum(axis=1).min():.4g}.."
            f"{out.sum(axis=1).max():.4g} (scores or log-odds? pass a model whose predict_proba "
            "gives probabilities)"
        )
    return out


def _dense(array: Any) -> np.ndarray:
    """A float64 numpy array from an encoder's output (dense, sparse or a data frame)."""
    if hasattr(array, "toarray"):
        array = array.toarray()
    return np.asarray(array, dtype=np.float64)


def check_model(model: object) -> None:
    """Raise a ``TypeError`` naming the problem if ``model`` cannot be explained."""
    try:
        import torch

        if isinstance(model, torch.nn.Module):
            raise TypeError(
                "`model` is a torch.nn.Module; wrap it with its encoder:"
                " TorchClassifier(module, encoder) (see cfx.recourse.model)"
            )
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    if not callable(getattr(model, "predict_proba", None)):
        raise TypeError(
            "`model` must have a predict_proba(X: DataFrame) method returning (n, 2)"
            f" probabilities, got {type(model).__name__} without one"
        )


def model_columns(model: Any, names: tuple[str, ...]) -> np.ndarray:
    """The schema's feature indices in the order the model was fitted on, ``(d,)``: the order
    of scikit-learn's ``feature_names_in_`` (a pipeline's too) when it holds exactly the schema's
    names in another order, else the schema's own order. scikit-learn refuses a frame whose
    columns come in another order than at fit, so a model fitted on ``X[["c", "a", "b"]]`` of a
    schema ``a, b, c`` was refused."""
    fitted = getattr(model, "feature_names_in_", None)
    if fitted is not None:
        try:
            fitted = [str(n) for n in fitted]
        except TypeError:  # not a sequence of names: the schema's order
            fitted = None
    if fitted is None or len(fitted) != len(names) or sorted(fitted) != sorted(names):
        return np.arange(len(names))
    where = {name: j for j, name in enumerate(names)}
    return np.array([where[n] for n in fitted], dtype=np.int64)


def approved_column(model: Any, approved: Hashable | None) -> int:
    """The column of ``model.predict_proba`` that holds the probability of ``approved``, the
    class label that means approved: its place in the model's ``classes_`` (a pipeline's final
    step's), or ``approved`` itself (0 or 1) for a model without ``classes_``. An error names
    the model's classes when ``approved`` is not one of them, so that a model of the
    probability of default (class 1 = bad) or with string labels is not read backwards.
    ``None`` (the default) is class 1 of a model whose classes are 0 and 1 (or that has no
    ``classes_``); any other model must name its approved class (classes 1 = denied, 2 =
    approved were read with 1 as approved, backwards, in silence)."""
    classes = getattr(model, "classes_", None)
    if classes is None and hasattr(model, "steps"):
        classes = getattr(model.steps[-1][1], "classes_", None)
    if approved is None and classes is not None and len(classes) == 2:
        shown = np.asarray(list(classes)).tolist()
        if set(shown) != {0, 1}:
            raise ValueError(
                f"`approved` must be given for a model whose classes are not 0 and 1: its "
                f"classes_ are {shown!r}; pass the one that means approved, e.g. "
                f"approved={shown[1]!r} if {shown[1]!r} means approved"
            )
    if approved is None:
        approved = 1
    if classes is None:
        if approved not in (0, 1) or isinstance(approved, bool):
            raise ValueError(
                "`approved` must be 0 or 1 (the predict_proba column of approval) for a model "
                f"without classes_, got {approved!r}"
            )
        return int(approved)
    listed = list(classes)
    if len(listed) != 2:
        raise ValueError(f"`model` must be a binary classifier, got classes {listed!r}")
    flags = (bool, np.bool_)
    if isinstance(approved, flags) and not all(isinstance(c, flags) for c in listed):
        raise TypeError(  # True == 1 matched class 1 of a 0/1 model: meant as "yes"?
            f"`approved` must be one of the model's classes {np.asarray(listed).tolist()!r}, "
            f"got the bool {approved!r}"
        )
    if approved not in listed:
        shown = np.asarray(listed).tolist()
        hint = (
            "; a model of the probability of default whose class 1 is 'bad' takes approved=0"
            if set(shown) == {0, 1}
            else f"; e.g. approved={shown[1]!r} if {shown[1]!r} means approved"
        )
        raise ValueError(
            f"`approved` must be the model's class that means approved, one of {shown!r} (its "
            f"classes_), got {approved!r}{hint}"
        )
    return listed.index(approved)


def split_pipeline(model: Any) -> tuple[Any | None, Any]:
    """``(encoder, final estimator)`` of a scikit-learn ``Pipeline``; ``(None, model)``
    otherwise."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline) and len(model.steps) >= 2:
        return model[:-1], model.steps[-1][1]
    return None, model


def is_log_odds(scores: np.ndarray, p: np.ndarray) -> bool:
    """Whether ``scores`` are the log-odds of the probabilities ``p`` (same rows): within 5 %
    on the rows with p in [0.01, 0.99]. Loose enough for a float32 network's noise in p
    (1e-4 moved its log-odds by 4e-4), tight enough for another scale (a Platt-scaled SVC's
    p = sigmoid(a d + b), an exponential-loss booster's sigmoid(2 F)); True when no row is
    in that range (nothing to compare)."""
    inside = (p >= 0.01) & (p <= 0.99)
    odds = np.log(p[inside]) - np.log1p(-p[inside])
    return bool(np.all(np.abs(odds - scores[inside]) <= 0.05 * (1.0 + np.abs(scores[inside]))))


def model_family(model: Any) -> Family:
    """What ``method="auto"`` sees: ``"linear"`` for a final linear classifier (``coef_`` of one
    row, ``decision_function``), ``"tree"`` for a binary scikit-learn gradient-boosting
    classifier, ``"other"`` for anything else (the model-agnostic search handles it)."""
    from sklearn.ensemble import GradientBoostingClassifier

    _, final = split_pipeline(model)
    coef = getattr(final, "coef_", None)
    if (
        coef is not None
        and np.ndim(coef) == 2
        and np.shape(coef)[0] == 1
        and callable(getattr(final, "decision_function", None))
    ):
        return "linear"
    if isinstance(final, GradientBoostingClassifier) and len(final.classes_) == 2:
        return "tree"
    return "other"


class SeparableEncoding:
    """A pipeline's encoder read column by column: ``encode(Z)`` in numpy, no data frames.

    scikit-learn's ``ColumnTransformer`` with scalers, ordinal codes and one-hot encoders is
    *separable*: each encoded column depends on one feature, affinely for numeric features and
    through a lookup table for categories. :meth:`read` probes the fitted encoder to recover
    those maps and verifies them exactly on the training rows; it returns ``None`` for encoders
    that are not separable (then everything goes through the pipeline itself).
    """

    def __init__(
        self,
        base: np.ndarray,
        columns: list[np.ndarray],
        slopes: list[np.ndarray],
        tables: list[np.ndarray],
        numeric: np.ndarray,
    ) -> None:
        self.base = base  # (m,) encoded value of a zero row (numeric 0, every table row 0)
        self.columns = columns  # per feature: indices of its encoded columns
        self.slopes = slopes  # per numeric feature: (len(columns[j]),) d encoded / d value
        self.tables = tables  # per categorical feature: (n_categories, len(columns[j]))
        self.numeric = numeric  # (d,) bool
        # encode() builds the columns feature by feature, then puts them in encoder order
        owned = np.concatenate([np.zeros(0, dtype=np.int64), *columns])
        free = np.setdiff1d(np.arange(len(base)), owned)  # columns no feature moves
        self._order = np.argsort(np.concatenate([owned, free]))  # block order -> encoder order
        self._free = base[free]
        self._offsets = [base[cols] for cols in columns]
        self._lookup = [
            tables[j] + base[cols] if not numeric[j] else tables[j]
            for j, cols in enumerate(columns)
        ]

    @property
    def width(self) -> int:
        return len(self.base)

    def encode(self, Z: np.ndarray) -> np.ndarray:
        """Encoded rows ``(n, m)`` of the codes ``Z`` ``(n, d)``."""
        blocks = []
        for j, cols in enumerate(self.columns):
            if len(cols) == 0:
                continue
            if self.numeric[j]:
                blocks.append(Z[:, j, None] * self.slopes[j][None] + self._offsets[j][None])
            else:
                blocks.append(self._lookup[j][Z[:, j].astype(np.int64)])
        blocks.append(np.broadcast_to(self._free[None], (len(Z), len(self._free))))
        return np.concatenate(blocks, axis=1)[:, self._order]  # (n, m)

    @classmethod
    def read(
        cls,
        encoder: Any,
        codec: Codec,
        Z_train: np.ndarray,
        refused: tuple[frozenset[int], ...] = (),
        frame: Callable[[np.ndarray], pd.DataFrame] | None = None,
    ) -> SeparableEncoding | None:
        """``refused``: per feature, category codes the encoder fails on (see
        :meth:`ModelView.read_refused`); they are not probed and their table rows are NaN.
        ``frame(Z)``: the data frame the encoder is given (default ``codec.to_frame``)."""
        import warnings

        transform = getattr(encoder, "transform", None)
        if not callable(transform):
            return None
        to_frame = frame or codec.to_frame

        def enc(Z: np.ndarray) -> np.ndarray:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return _dense(transform(to_frame(Z)))

        ref = Z_train[:1]  # (1, d)
        probes: list[np.ndarray] = []
        spans: list[tuple[int, int]] = []
        for j in range(codec.d):
            rows = _probe_values(codec, j, Z_train[:, j])
            if j < len(refused) and refused[j]:
                rows = rows[~np.isin(rows, list(refused[j]))]
            P = np.repeat(ref, len(rows), axis=0)
            P[:, j] = rows
            spans.append((sum(len(p) for p in probes), len(rows)))
            probes.append(P)
        try:
            E = enc(np.concatenate(probes))  # (n_probes, m)
            E_ref = enc(ref)[0]  # (m,)
        except Exception:  # an encoder that cannot take its own training frame's dtypes
            return None
        if E.ndim != 2:
            return None
        base = E_ref.copy()
        columns, slopes, tables = [], [], []
        owner = np.full(E.shape[1], -1)
        for j in range(codec.d):
            start, n = spans[j]
            block = E[start : start + n]  # (n, m)
            cols = np.flatnonzero(np.abs(block - E_ref).max(axis=0) > 1e-12)
            if (owner[cols] >= 0).any():
                return None  # two features share an encoded column: not separable
            owner[cols] = j
            columns.append(cols)
            values = probes[j][:, j]
            if codec.numeric[j]:
                span = values.max() - values.min()
                slope = (block[-1, cols] - block[0, cols]) / (values[-1] - values[0])
                if not span > 0:
                    slope = np.zeros(len(cols))
                slopes.append(slope)
                tables.append(np.zeros((0, len(cols))))
                base[cols] -= ref[0, j] * slope
            else:
                table = np.full((len(codec.lookup[j]), len(cols)), np.nan)  # NaN: refused
                table[values.astype(np.int64)] = block[:, cols]
                slopes.append(np.zeros(len(cols)))
                tables.append(table - table[int(ref[0, j])])
        encoding = cls(base, columns, slopes, tables, codec.numeric.copy())
        sample = Z_train[:: max(1, len(Z_train) // 256)]
        expected = np.concatenate([enc(sample), E])
        got = encoding.encode(np.concatenate([sample, *probes]))
        tolerance = 1e-8 * (1.0 + np.abs(expected).max())
        return encoding if np.abs(got - expected).max() <= tolerance else None


def _probe_values(codec: Codec, j: int, column: np.ndarray) -> np.ndarray:
    """Values of feature ``j`` to probe: every category, or numeric min, quartiles and max."""
    if codec.numeric[j]:
        low, high = float(column.min()), float(column.max())
        if high == low:
            high = low + 1.0
        values = np.array([low, *np.quantile(column, [0.25, 0.5, 0.75]), high])
        return np.round(values) if codec.schema.features[j].integer else values
    return np.arange(len(codec.lookup[j]), dtype=np.float64)


class ModelView:
    """The user's model seen through codes: ``proba(Z)`` and ``logit(Z)`` of approval, ``(n,)``.

    When the model is a pipeline with a separable encoder (:class:`SeparableEncoding`, verified
    on the training rows), :meth:`proba` encodes in numpy and calls the final estimator
    directly, which is exact and skips the per-call cost of building a data frame; :meth:`check`
    always goes through ``model.predict_proba`` on a data frame. ``calls``/``rows`` count both.
    """

    def __init__(self, model: Any, codec: Codec, approved: Hashable | None = None) -> None:
        check_model(model)
        self.model = model
        self.codec = codec
        self.encoding: SeparableEncoding | None = None
        self._final: Any = None
        self.positive = approved_column(model, approved)  # predict_proba's approved column
        # the schema's feature indices in the model's column order (model_columns)
        self.columns = model_columns(model, codec.names)
        self._reordered = bool((self.columns != np.arange(codec.d)).any())
        # per feature: the category codes the model refuses (see read_refused)
        self.refused: tuple[frozenset[int], ...] = tuple(frozenset() for _ in range(codec.d))
        self.calls = 0
        self.rows = 0
        # whether decision_function is the log-odds of predict_proba (None: not yet seen)
        self._decision_is_log_odds: bool | None = None

    def frame(self, Z: np.ndarray) -> pd.DataFrame:
        """The data frame the model is called on: codes ``Z`` ``(n, d)`` with the training
        frame's dtypes, columns in the order the model was fitted on (:func:`model_columns`)."""
        out = self.codec.to_frame(Z)
        return out.iloc[:, self.columns] if self._reordered else out

    def read_refused(self, ref: np.ndarray) -> None:
        """Find the categories ``model.predict_proba`` fails on, changing one feature of the
        row ``ref`` ``(d,)`` at a time: a scikit-learn ``OneHotEncoder`` fitted with its
        default ``handle_unknown="error"`` refuses every category no training row has (German
        Credit's ``'female : single'``). No plan may propose them, and the exact methods read
        the model without them. A failure on ``ref`` itself is the model's and is raised."""
        codec = self.codec
        cat = [j for j in range(codec.d) if not codec.numeric[j]]
        self.check(ref[None])  # raises (e.g. a column mismatch) before any probing
        probes = {j: _probe_values(codec, j, ref[j : j + 1]) for j in cat}

        def fails(values: dict[int, np.ndarray]) -> bool:
            rows = []  # one call: each feature's values in turn, the rest as `ref`
            for j, vals in values.items():
                P = np.repeat(ref[None], len(vals), axis=0)
                P[:, j] = vals
                rows.append(P)
            try:
                self.check(np.concatenate(rows))
            except Exception:  # whatever the model raises, it refuses the rows
                return True
            return False

        if not cat or not fails(probes):  # the usual case: one call
            return
        refused = [frozenset[int]() for _ in range(codec.d)]
        for j in cat:
            if fails({j: probes[j]}):
                refused[j] = frozenset(
                    int(c) for c in probes[j] if fails({j: np.array([c], dtype=np.float64)})
                )
        self.refused = tuple(refused)

    def read_bounds(self, ref: np.ndarray, Z_train: np.ndarray) -> None:
        """An error when ``model.predict_proba`` cannot score a numeric feature at a bound
        the schema gives it, changing one feature of the row ``ref`` ``(d,)`` at a time.
        Plans and the exact methods' readings go as far as the bounds: a model of log(income)
        under ``lower=0`` failed at fit with only "Input X contains infinity" (the MILP
        reading) and then in ``explain`` on a whole batch of candidates, naming neither the
        feature nor the value cfx had tried."""
        import warnings

        probes = [
            (j, side, float(bound))
            for j, spec in enumerate(self.codec.schema.features)
            if spec.kind == "numeric"
            for side, bound in (("lower", spec.lower), ("upper", spec.upper))
            if bound is not None and np.isfinite(bound)
        ]

        def fails(chosen: list[tuple[int, str, float]]) -> Exception | None:
            P = np.repeat(ref[None], len(chosen), axis=0)
            for row, (j, _, value) in enumerate(chosen):
                P[row, j] = value
            try:
                with warnings.catch_warnings():  # (log(0)'s divide-by-zero, said below)
                    warnings.simplefilter("ignore")
                    self.check(P)
            except Exception as err:  # whatever the model raises, it cannot score the row
                return err
            return None

        if not probes or fails(probes) is None:  # the usual case: one call
            return
        for j, side, value in probes:
            err = fails([(j, side, value)])
            if err is None:
                continue
            name, seen = self.codec.names[j], Z_train[:, j]
            why = f"{type(err).__name__}: {str(err).splitlines()[0].rstrip('.')}"
            raise ValueError(
                f"`model.predict_proba` cannot score `{name}` = {value:g}, the schema's "
                f"`{side}` bound for it (X_train's {name} runs {seen.min():g}..{seen.max():g}): "
                f"{why}. Plans may move a feature as far as its bounds: set `{side}` to a value "
                f"the model scores (e.g. {seen.min() if side == 'lower' else seen.max():g})"
            ) from err

    def read_encoder(self, Z_train: np.ndarray) -> None:
        """Try to read the pipeline's encoder (see :class:`SeparableEncoding`) for fast calls;
        keep it only if the final estimator then reproduces ``predict_proba`` exactly."""
        import warnings

        encoder, final = split_pipeline(self.model)
        if encoder is None or not callable(getattr(final, "predict_proba", None)):
            return
        encoding = SeparableEncoding.read(
            encoder, self.codec, Z_train, self.refused, frame=self.frame
        )
        if encoding is None:
            return
        sample = Z_train[:: max(1, len(Z_train) // 128)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fast = np.asarray(final.predict_proba(encoding.encode(sample)), dtype=np.float64)
        slow = np.asarray(self.model.predict_proba(self.frame(sample)), np.float64)
        if fast.shape == slow.shape and np.abs(fast - slow).max() <= 1e-9:
            self.encoding, self._final = encoding, final

    def proba(self, Z: np.ndarray) -> np.ndarray:
        """Approval probability ``(n,)`` of the applicants with codes ``Z`` ``(n, d)``."""
        if len(Z) == 0:
            return np.zeros(0)
        if self.encoding is None:
            return self.check(Z)
        import warnings

        self.calls += 1
        self.rows += len(Z)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = np.asarray(self._final.predict_proba(self.encoding.encode(Z)), np.float64)
        return out[:, self.positive]

    def check(self, Z: np.ndarray) -> np.ndarray:
        """Approval probability ``(n,)`` from ``model.predict_proba`` on a data frame."""
        if len(Z) == 0:
            return np.zeros(0)
        self.calls += 1
        self.rows += len(Z)
        try:
            out = np.asarray(self.model.predict_proba(self.frame(Z)), dtype=np.float64)
        except Exception as err:  # the model's own error, kept; said whose it is
            err.add_note(f"(raised by `model.predict_proba` on a frame of {len(Z)} row(s))")
            raise
        return check_probabilities(out, len(Z))[:, self.positive]

    def logit(self, Z: np.ndarray) -> np.ndarray:
        """Log-odds of approval ``(n,)``: ``decision_function`` when the model has one and it
        is the log-odds of ``predict_proba`` (exact; checked on the first rows asked for),
        otherwise ``log(p / (1 - p))``. A Platt-scaled linear SVC's decision function is not
        (p = sigmoid(a f + b)): read as log-odds, the exact methods set their bar on the
        wrong scale and "proved" no recourse where the search found one."""
        decision = getattr(self.model, "decision_function", None)
        if callable(decision) and self._decision_is_log_odds is not False:
            self.calls += 1
            self.rows += len(Z)
            raw = np.asarray(decision(self.frame(Z)), dtype=np.float64).reshape(-1)
            raw = raw if self.positive == 1 else -raw
            if self._decision_is_log_odds is None and len(Z):
                self._decision_is_log_odds = is_log_odds(raw[:64], self.proba(Z[:64]))
            if self._decision_is_log_odds:
                return raw
        p = np.clip(self.proba(Z), 1e-15, 1 - 1e-15)
        return np.log(p) - np.log1p(-p)
