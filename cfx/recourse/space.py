"""What an applicant may change, at what cost: codes, per-query constraints and action spaces.

Every recourse method works on one array representation, ``Z`` of shape ``(n, d)`` float64 in
schema column order: numeric features hold their value, ordinal and categorical features hold the
index of their category in ``FeatureSpec.categories``. :class:`Codec` converts data frames to and
from it (validating them on the way in); :class:`Constraints` overrides the schema for one query;
:class:`ActionSpace` is the resulting set of allowed actions for one applicant, with their costs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from cfx.data.schema import Direction, FeatureSchema, FeatureSpec
from cfx.errors import Notice, check_int
from cfx.recourse.result import PLAN_DECIMALS

CostName = Literal["mad", "range"]
COSTS: tuple[str, ...] = ("mad", "range")
_SHOW = 5

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------
# codes <-> data frames


def check_columns(df: pd.DataFrame, names: Sequence[str], what: str) -> None:
    """An error naming the ``names`` that ``df`` lacks and, next to them, the columns it has
    that no name matches: other columns are dropped, but beside a missing one they are most
    likely its misspelling."""
    missing = [n for n in names if n not in df.columns]
    if missing:
        extra = [str(c) for c in df.columns if c not in names]
        raise ValueError(
            f"`{what}` is missing columns {missing!r}"
            + (f" and has columns the schema does not name: {extra!r}" if extra else "")
            + f"; expected the schema's features {list(names)!r}"
        )


class Codec:
    """Converts applicant frames to codes ``Z`` ``(n, d)`` and back, with the dtypes of ``like``.

    ``like`` is the training frame, and the model is handed frames as it was trained on them:
    a categorical column comes back as a ``pd.Categorical`` with the training column's
    categories in the training column's order (codes of a model that reads ``.cat.codes`` mean
    the same), a plain column as the training column's values and dtype (schema categories
    are strings, so a column of integer codes 1/2/3 is declared ``("1", "2", "3")`` and handed
    back as the integers), and an ``integer`` numeric feature keeps an integer dtype.
    """

    def __init__(self, schema: FeatureSchema, like: pd.DataFrame) -> None:
        self.schema = schema
        self.names = schema.names
        self.d = len(schema)
        self.numeric = np.array([f.kind == "numeric" for f in schema.features])  # (d,)
        self.ordinal = np.array([f.kind == "ordinal" for f in schema.features])  # (d,)
        self.lookup = [
            {c: i for i, c in enumerate(f.categories)} if f.kind != "numeric" else {}
            for f in schema.features
        ]
        self._as_int = [
            f.kind == "numeric" and f.integer and pd.api.types.is_integer_dtype(like[f.name])
            for f in schema.features
        ]
        # per numeric feature held in a pandas nullable column (Int64, Float64): that dtype,
        # handed back as it was (numpy's int64/float64 otherwise)
        self._nullable = [
            like[f.name].dtype
            if f.kind == "numeric"
            and isinstance(like[f.name].dtype, pd.api.extensions.ExtensionDtype)
            and pd.api.types.is_numeric_dtype(like[f.name].dtype)
            else None
            for f in schema.features
        ]
        # per categorical feature: its training dtype and, per schema category, the code in it
        self._dtypes: list[pd.CategoricalDtype | None] = []
        self._codes: list[np.ndarray | None] = []
        self._labels: list[Any] = []  # per schema category, the value handed to the model
        for f in schema.features:
            if f.kind == "numeric":
                dtype, codes, labels, plain = None, None, np.zeros(0), None
            else:
                dtype, codes, labels, plain = _categories_like(f, like[f.name])
            self._dtypes.append(dtype)
            self._codes.append(codes)
            # typed once here; to_frame takes from it on every model call
            self._labels.append(labels if plain is None else pd.array(labels, dtype=plain))

    def to_codes(self, df: pd.DataFrame, *, what: str = "applicants") -> np.ndarray:
        """Validate ``df`` (missing columns, NaN, non-numeric values, unknown categories) and
        return its codes ``(n, d)``. Values outside a feature's range are allowed here: ranges
        constrain what a counterfactual may change *to*, not who may ask."""
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"`{what}` must be a pandas DataFrame, got {type(df).__name__}")
        check_columns(df, self.names, what)
        Z = np.empty((len(df), self.d))  # (n, d)
        faults: list[TypeError | ValueError] = []  # every column's: one run names them all
        for j, spec in enumerate(self.schema.features):
            try:
                Z[:, j] = self._column_codes(spec, df[spec.name], what)
            except (TypeError, ValueError) as err:
                faults.append(err)
        if len(faults) == 1:
            raise faults[0]
        if faults:
            raise ValueError(
                f"`{what}` has {len(faults)} columns at fault: " + "; ".join(map(str, faults))
            )
        return Z

    def _column_codes(self, spec: FeatureSpec, column: pd.Series, what: str) -> np.ndarray:
        """One column's codes ``(n,)``, or a ValueError naming what is wrong with it."""
        nan = column.isna().to_numpy()
        if nan.any():
            raise ValueError(
                f"`{what}` column `{spec.name}` has {int(nan.sum())} missing (NaN) values,"
                f" first rows {first_rows(column.index, nan)!r}"
            )
        if spec.kind == "numeric":
            return _numeric_values(spec, column, what)
        if spec.kind not in ("ordinal", "categorical"):
            raise RuntimeError(f"unknown kind {spec.kind!r}")  # the schema refuses it earlier
        dtype = column.dtype
        if isinstance(dtype, pd.CategoricalDtype) and tuple(
            str(c) for c in dtype.categories
        ) == tuple(spec.categories):
            codes = column.cat.codes.to_numpy()
        else:
            index = pd.Index(list(spec.categories))
            codes = index.get_indexer(column.astype(str).to_numpy())  # -1: unknown
            if (codes < 0).any() and pd.api.types.is_float_dtype(column):
                # integer codes in a float column ('1.0' for '1'): one applicant passed as a
                # Series of an all-numeric frame, or a CSV column with a gap, was refused
                values = column.to_numpy(dtype=np.float64)
                whole = np.isfinite(values) & (values == np.round(values))
                ints = np.where(whole, np.round(values), 0).astype(np.int64)  # no NaN cast
                text = np.where(whole, ints.astype(str), "")
                codes = np.where(codes < 0, index.get_indexer(text), codes)
            elif (codes < 0).any() and pd.api.types.is_integer_dtype(column):
                # and the other way: categories '1.0' (as a float column of X_train prints
                # them) for an applicant's integer codes (a CSV without gaps)
                text = column.to_numpy(dtype=np.float64).astype(str)  # 2 -> "2.0"
                codes = np.where(codes < 0, index.get_indexer(text), codes)
        if (codes < 0).any():
            values = column.astype(str).to_numpy()
            unknown = sorted(set(values[codes < 0]))[:_SHOW]
            raise ValueError(
                f"`{what}` column `{spec.name}` has unknown categories {unknown!r}"
                f" (first rows {first_rows(column.index, codes < 0)!r}); allowed: "
                f"{spec.categories!r}"
            )
        return codes

    def to_frame(self, Z: np.ndarray, index: pd.Index | None = None) -> pd.DataFrame:
        """The data frame of codes ``Z`` ``(n, d)`` with the training frame's dtypes."""
        columns: dict[str, object] = {}
        for j, name in enumerate(self.names):
            col = Z[:, j]
            if self.numeric[j]:
                values = np.round(col).astype(np.int64) if self._as_int[j] else col
                columns[name] = (
                    values if self._nullable[j] is None else _nullable(values, self._nullable[j])
                )
            elif (dtype := self._dtypes[j]) is not None:
                codes = self._codes[j]
                assert codes is not None
                columns[name] = pd.Categorical.from_codes(codes[col.astype(np.int64)], dtype=dtype)
            else:
                labels = self._labels[j]
                columns[name] = labels.take(col.astype(np.int64))
        return pd.DataFrame(columns, index=index, copy=False)

    def value(self, j: int, code: float) -> float | str:
        """The human value of feature ``j`` at ``code`` (a number or a category label)."""
        if self.numeric[j]:
            return int(code) if self.schema.features[j].integer else float(code)
        return self.schema.features[j].categories[int(code)]


def _nullable(values: np.ndarray, dtype: Any) -> Any:
    """``values`` in the training column's pandas nullable ``dtype`` (``Int64``, ``Float64``),
    or as they are where that dtype cannot hold them (a plan past ``Int8``'s range)."""
    try:
        return pd.array(values, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        return values


def _categories_like(
    spec: FeatureSpec, column: pd.Series
) -> tuple[pd.CategoricalDtype | None, np.ndarray | None, np.ndarray, Any]:
    """How the schema's categories of ``spec`` go back into a frame like the training
    ``column``: ``(dtype, codes, labels, plain)``. A categorical column: its dtype (with any
    schema category it lacks appended) and each schema category's code in it. A number or
    bool column (``Int64`` and other pandas dtypes too): each schema category as a value of
    the column's dtype (``"2"`` as the integer 2, ``"True"`` as True) and that dtype as
    ``plain``. Any other column: the column's own value that prints as the category."""
    cats = list(spec.categories)
    where = f"X_train column `{spec.name}`"
    if isinstance(column.dtype, pd.CategoricalDtype):
        known = list(column.dtype.categories)
        by_str = {str(c): c for c in known}
        values = [by_str.get(c, c) for c in cats]
        extended = known + [v for v in values if v not in by_str.values()]
        dtype = pd.CategoricalDtype(extended, ordered=column.dtype.ordered)
        codes = np.array([extended.index(v) for v in values], dtype=np.int64)
        return dtype, codes, np.array(values, dtype=object), None
    if pd.api.types.is_bool_dtype(column):
        truth = {"True": True, "False": False}
        if not set(cats) <= set(truth):
            raise ValueError(
                f"{where} holds booleans ({column.dtype}); the schema's categories must be "
                f"'False' and 'True', got {tuple(cats)!r}"
            )
        return None, None, np.array([truth[c] for c in cats], dtype=object), column.dtype
    if pd.api.types.is_numeric_dtype(column):
        try:
            numbers = pd.to_numeric(pd.Series(cats, dtype=object))
            values = numbers.astype(column.dtype).tolist()
            fits = [float(v) for v in values] == [float(n) for n in numbers]  # uint8: 300 -> 44
        except (TypeError, ValueError, OverflowError):
            fits = False
        if not fits:
            raise ValueError(
                f"{where} holds numbers ({column.dtype}) but the schema's categories "
                f"{tuple(cats)!r} are not all such numbers: the model could not be handed them"
            )
        # "1" for a float column's 1.0 too (integer codes stored as float after a merge with
        # gaps: the README's ("1", "2", ...) was refused, and the "1.0" it asked for then
        # refused applicants whose codes are integers); " 2" or "2.50" is not how 2 prints
        whole = [
            str(v) == c or (isinstance(v, float) and v.is_integer() and str(int(v)) == c)
            for v, c in zip(values, cats, strict=True)
        ]
        if not all(whole):
            raise ValueError(
                f"{where} holds {column.dtype} values; the schema's categories "
                f"{tuple(cats)!r} must be written as those values print "
                f"({[str(v) for v in values]!r})"
            )
        return None, None, np.array(values, dtype=object), column.dtype
    by_str = {str(v): v for v in pd.unique(column)}
    return None, None, np.array([by_str.get(c, c) for c in cats], dtype=object), None


def unique_rows(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(index of each distinct row's first occurrence, inverse (n,))`` of ``A`` ``(n, d)``,
    rows in sorted order; like ``np.unique(A, axis=0)`` but 3x faster (one 1-D sort)."""
    if len(A) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if A.dtype == np.bool_ and A.shape[1] <= 62:
        keys: np.ndarray = A @ (np.int64(1) << np.arange(A.shape[1], dtype=np.int64))
    else:
        A = np.ascontiguousarray(A, dtype=np.float64) + 0.0  # -0.0 -> 0.0
        keys = A.view(np.dtype((np.void, 8 * A.shape[1]))).ravel()
    _, index, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return index, inverse.reshape(-1)


def first_rows(labels: pd.Index, wrong: np.ndarray) -> list[object]:
    """The first few row ``labels`` where ``wrong`` ``(n,)`` holds, for an error."""
    return [r.item() if isinstance(r, np.generic) else r for r in labels[wrong][:_SHOW]]


def _numeric_values(spec: FeatureSpec, column: pd.Series, what: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(column):  # was called "numbers held as text"
        raise TypeError(
            f"`{what}` column `{spec.name}` holds booleans, declared numeric: declare it "
            f"categorical with categories ('False', 'True'), or convert it with "
            f"df[{spec.name!r}].astype(int)"
        )
    if not pd.api.types.is_numeric_dtype(column):
        coerced = pd.to_numeric(column, errors="coerce")
        wrong = coerced.isna().to_numpy()
        bad = [str(v) for v in column[wrong].unique()[:_SHOW]]
        if bad:
            detail = (
                f" with non-numeric values {bad!r} (first rows {first_rows(column.index, wrong)!r})"
            )
        else:  # numbers held as text ("45000"): all of them convert
            shown = [str(v) for v in column.unique()[:_SHOW]]
            detail = (
                f" holding numbers as text, e.g. {shown!r}: convert the column with "
                f"pd.to_numeric(df[{spec.name!r}])"
            )
        raise TypeError(
            f"`{what}` column `{spec.name}` must be numeric, got dtype {column.dtype}{detail}"
        )
    values = column.to_numpy(dtype=np.float64)
    infinite = ~np.isfinite(values)
    if infinite.any():  # (NaN was named before): rows named as for the other checks
        raise ValueError(
            f"`{what}` column `{spec.name}` must hold finite numbers, got "
            f"{values[infinite][:_SHOW].tolist()!r} (first rows "
            f"{first_rows(column.index, infinite)!r})"
        )
    if spec.integer:
        # a model would score the rounded point while the plan reported the truncated one
        whole = np.round(values)
        fractional = np.abs(values - whole) > 1e-9  # rounding noise of a float column passes
        if fractional.any():
            raise ValueError(
                f"`{what}` column `{spec.name}` is a whole-number feature in the schema, got "
                f"{values[fractional][:_SHOW].tolist()!r} (first rows "
                f"{first_rows(column.index, fractional)!r}): round the values, or declare the "
                "feature with integer=False"
            )
        values = whole
    return values


# ------------------------------------------------------------------------------------------------
# per-query constraints


@dataclass(frozen=True)
class Constraints:
    """Per-query overrides of the schema's actionability rules (everything else is kept).

    ``immutable``/``mutable`` freeze or free features; ``direction``, ``bounds`` (numeric
    ``(lower, upper)``, ``None`` keeps a side), ``costs``, ``transitions`` (categorical
    whitelists) and ``transition_costs`` (categorical steps per change, see
    :class:`~cfx.data.schema.FeatureSpec`) replace the schema's field per feature;
    ``max_changes`` caps the number of features an action may change.

    Example: ``Constraints(immutable=("purpose",), bounds={"credit_amount": (2000, None)},
    max_changes=2)``; ``Constraints(transition_costs={"housing": {"rent": {"own": 3}}})`` prices
    buying a home at three steps for this applicant.
    """

    immutable: tuple[str, ...] = ()
    mutable: tuple[str, ...] = ()
    direction: Mapping[str, Direction] = field(default_factory=dict)
    bounds: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    costs: Mapping[str, float] = field(default_factory=dict)
    transitions: Mapping[str, Mapping[str, tuple[str, ...]] | None] = field(default_factory=dict)
    max_changes: int | None = None
    transition_costs: Mapping[str, Mapping[str, Mapping[str, float]] | None] = field(
        default_factory=dict
    )

    def __post_init__(self) -> None:
        for name in ("immutable", "mutable"):
            value = getattr(self, name)
            tolist = getattr(value, "tolist", None)  # a numpy array or pandas Index of names
            if callable(tolist) and getattr(value, "ndim", 1) == 1:
                value = tolist()
            if isinstance(value, str) or not isinstance(value, tuple | list):
                raise TypeError(f"`{name}` must be a tuple of feature names, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        both = sorted(set(self.immutable) & set(self.mutable))
        if both:
            raise ValueError(f"features {both!r} are listed as both `immutable` and `mutable`")
        for name in ("direction", "bounds", "costs", "transitions", "transition_costs"):
            if not isinstance(getattr(self, name), Mapping):
                raise TypeError(f"`{name}` must be a mapping by feature name")
        _check_max_changes(self.max_changes)

    def apply(self, schema: FeatureSchema) -> FeatureSchema:
        """The schema with these overrides (each validated by the schema itself)."""
        for name in (
            *self.immutable,
            *self.mutable,
            *self.direction,
            *self.bounds,
            *self.costs,
            *self.transitions,
            *self.transition_costs,
        ):
            schema[name]  # raises UnknownNameError naming the known features
        for name in self.immutable:
            schema = schema.replace(name, mutable=False)
        for name in self.mutable:
            if not schema[name].mutable:  # e.g. a protected attribute: an analyst's what-if
                import warnings  # once per call site, not once per applicant in a loop

                warnings.warn(
                    f"constraints make `{name}` changeable, which the schema fixes "
                    f"({schema[name].description or 'immutable'}): plans may now ask the "
                    "applicant to change it, which is for analysis, not advice",
                    Notice,
                    stacklevel=3,
                )
            schema = schema.replace(name, mutable=True)
        for name, direction in self.direction.items():
            schema = _overridden(schema, "direction", name, direction=direction)
        for name, bound in self.bounds.items():
            if not isinstance(bound, tuple | list) or len(bound) != 2:
                raise TypeError(f"`bounds[{name!r}]` must be (lower, upper), got {bound!r}")
            spec = schema[name]
            lower = spec.lower if bound[0] is None else bound[0]
            upper = spec.upper if bound[1] is None else bound[1]
            schema = _overridden(schema, "bounds", name, lower=lower, upper=upper)
        for name, cost in self.costs.items():
            schema = _overridden(schema, "costs", name, cost=cost)
        for name, transitions in self.transitions.items():
            schema = _overridden(schema, "transitions", name, transitions=transitions)
        for name, steps in self.transition_costs.items():  # after transitions: checked against them
            schema = _overridden(schema, "transition_costs", name, transition_costs=steps)
        return schema


def _overridden(schema: FeatureSchema, rule: str, name: str, **change: Any) -> FeatureSchema:
    """``schema`` with ``name``'s fields changed by the constraints' ``rule``; the schema's
    refusal says which rule made it (it named only the feature's field: a bound on a category
    read as a fault of the schema)."""
    try:
        return schema.replace(name, **change)
    except (TypeError, ValueError) as err:
        said = f"`constraints.{rule}[{name!r}]`: {err}"
        raise (ValueError(said) if isinstance(err, ValueError) else TypeError(said)) from err


def _check_max_changes(value: object) -> None:
    if value is not None:
        check_int("max_changes", value)


# ------------------------------------------------------------------------------------------------
# scales learned from data


@dataclass(frozen=True)
class Scales:
    """Per-feature statistics learned by ``Recourse.fit`` from the training codes."""

    scale: np.ndarray  # (d,) cost divisor of a numeric step (MAD or range); 1 for categories
    lower: np.ndarray  # (d,) numeric lower bound (schema, else data min); nan for categories
    upper: np.ndarray  # (d,) numeric upper bound (schema, else data max); nan for categories
    center: np.ndarray  # (d,) mean of the code (for the neighbour space)
    spread: np.ndarray  # (d,) standard deviation of the code (for the neighbour space)

    @classmethod
    def learn(cls, schema: FeatureSchema, Z: np.ndarray, cost: str) -> Scales:
        d = len(schema)
        scale = np.ones(d)
        lower = np.full(d, np.nan)
        upper = np.full(d, np.nan)
        for j, spec in enumerate(schema.features):
            if spec.kind != "numeric":
                continue
            col = Z[:, j]
            lower[j] = col.min() if spec.lower is None else spec.lower
            upper[j] = col.max() if spec.upper is None else spec.upper
            if cost == "mad":
                scale[j] = _mad(col)
            elif cost == "range":
                scale[j] = col.max() - col.min()
            else:
                raise ValueError(f"`cost` must be one of {COSTS}, got {cost!r}")
            if not scale[j] > 0:
                scale[j] = 1.0
        spread = Z.std(axis=0)
        return cls(
            scale=scale,
            lower=lower,
            upper=upper,
            center=Z.mean(axis=0),
            spread=np.where(spread > 0, spread, 1.0),
        )


def _mad(col: np.ndarray) -> float:
    """Median absolute deviation; when it is 0 (a feature with a dominant value, e.g. most
    applicants have 1 credit) the mean absolute deviation from the median instead."""
    deviation = np.abs(col - np.median(col))
    mad = float(np.median(deviation))
    return mad if mad > 0 else float(deviation.mean())


# ------------------------------------------------------------------------------------------------
# the actions open to one applicant


@dataclass(frozen=True)
class ActionSpace:
    """The actions open to one applicant ``z0`` under a schema (after per-query constraints).

    A numeric feature ``j`` may move to any value in ``[lo[j], hi[j]]`` (whole numbers when
    ``integer[j]``); a categorical or ordinal one to a code in ``targets[j]``. Staying at ``z0``
    is always allowed. Action cost: ``weight * |change| / scale`` for numeric features,
    ``weight`` times the steps of a category change (``steps[j][code]``: one per rank moved
    along an ordinal order; one, or the schema's ``transition_costs``, for a categorical one).
    """

    schema: FeatureSchema
    z0: np.ndarray  # (d,) the applicant's codes
    movable: np.ndarray  # (d,) bool: the feature has at least one allowed new value
    lo: np.ndarray  # (d,) numeric: lowest allowed new value; nan for categories
    hi: np.ndarray  # (d,) numeric: highest allowed new value; nan for categories
    integer: np.ndarray  # (d,) bool
    numeric: np.ndarray  # (d,) bool
    ordinal: np.ndarray  # (d,) bool
    targets: tuple[tuple[int, ...], ...]  # allowed new codes per categorical feature
    steps: tuple[np.ndarray, ...]  # per categorical feature, steps from z0 to each code; () else
    weight: np.ndarray  # (d,) per-feature action cost
    scale: np.ndarray  # (d,) numeric cost divisor (MAD); 1 for categories
    max_changes: int | None

    @classmethod
    def build(
        cls,
        schema: FeatureSchema,
        z0: np.ndarray,
        scales: Scales,
        max_changes: int | None,
        refused: tuple[frozenset[int], ...] = (),
    ) -> ActionSpace:
        """The moves open to the applicant ``z0``: ``schema``'s rules, the data's ranges for
        numeric features without bounds, and no category the model refuses (``refused``, per
        feature, as :attr:`~cfx.recourse.model.ModelView.refused`)."""
        d = len(schema)
        lo = np.full(d, np.nan)
        hi = np.full(d, np.nan)
        movable = np.zeros(d, dtype=bool)
        targets: list[tuple[int, ...]] = []
        steps: list[np.ndarray] = []
        for j, spec in enumerate(schema.features):
            if spec.kind == "numeric":
                targets.append(())
                steps.append(np.zeros(0))
                # the query's schema bounds, else the training data's range
                low = float(scales.lower[j] if spec.lower is None else spec.lower)
                high = float(scales.upper[j] if spec.upper is None else spec.upper)
                if spec.direction == "increase":
                    low = max(low, z0[j])
                elif spec.direction == "decrease":
                    high = min(high, z0[j])
                elif spec.direction != "any":
                    raise ValueError(f"unknown direction {spec.direction!r}")
                if spec.max_shift is not None:  # no further than this from the applicant
                    low = max(low, z0[j] - spec.max_shift)
                    high = min(high, z0[j] + spec.max_shift)
                if spec.integer:
                    low, high = math.ceil(low), math.floor(high)
                lo[j], hi[j] = low, high
                has_other = low < high or (low == high and low != z0[j])
                movable[j] = spec.mutable and has_other
            elif spec.kind in ("ordinal", "categorical"):
                source = spec.categories[int(z0[j])]
                allowed = tuple(
                    i
                    for i in (spec.categories.index(c) for c in spec.allowed_targets(source))
                    if not (j < len(refused) and i in refused[j])
                )
                targets.append(allowed)
                steps.append(np.array(spec.step_costs(source)))
                movable[j] = bool(allowed)
            else:
                raise ValueError(f"unknown kind {spec.kind!r}")
        _check_max_changes(max_changes)
        return cls(
            schema=schema,
            z0=np.asarray(z0, dtype=np.float64),
            movable=movable,
            lo=lo,
            hi=hi,
            integer=np.array([f.integer for f in schema.features]),
            numeric=np.array([f.kind == "numeric" for f in schema.features]),
            ordinal=np.array([f.kind == "ordinal" for f in schema.features]),
            targets=tuple(targets),
            steps=tuple(steps),
            weight=np.array([f.cost for f in schema.features]),
            scale=scales.scale,
            max_changes=max_changes,
        )

    @property
    def d(self) -> int:
        return len(self.z0)

    def changed(self, Z: np.ndarray) -> np.ndarray:
        """``(n, d)`` bool: which features each row of ``Z`` ``(n, d)`` changes."""
        return np.abs(Z - self.z0) > 1e-9

    def feature_costs(self, Z: np.ndarray) -> np.ndarray:
        """``(n, d)`` per-feature action cost of moving ``z0`` to each row of ``Z``."""
        steps = np.abs(Z - self.z0)  # (n, d); numeric features' steps are their change
        for j in np.flatnonzero(~self.numeric).tolist():
            codes = np.rint(Z[:, j])
            bad = ~((codes >= 0) & (codes < len(self.steps[j])))  # NaN included
            if bad.any():
                raise ValueError(
                    f"`{self.schema.features[j].name}`: codes must be whole numbers in "
                    f"0..{len(self.steps[j]) - 1} (its categories), got {Z[bad, j][:5].tolist()}"
                )
            steps[:, j] = self.steps[j][codes.astype(np.int64)]
        per_step = np.where(self.numeric, self.weight / self.scale, self.weight)
        return steps * per_step

    def cost(self, Z: np.ndarray) -> np.ndarray:
        """``(n,)`` action cost of moving ``z0`` to each row of ``Z`` ``(n, d)``."""
        return self.feature_costs(Z).sum(axis=1)

    def violations(self, z: np.ndarray) -> list[str]:
        """Every constraint that the action ``z0 -> z`` ``(d,)`` breaks, in words (empty: ok)."""
        out = []
        changed = self.changed(z[None])[0]
        for j in np.flatnonzero(changed).tolist():
            spec = self.schema.features[j]
            if not spec.mutable:
                out.append(f"`{spec.name}` is immutable")
            elif self.numeric[j]:
                if not self.lo[j] - 1e-9 <= z[j] <= self.hi[j] + 1e-9:
                    out.append(
                        f"`{spec.name}` = {z[j]:g} is outside the allowed"
                        f" [{self.lo[j]:g}, {self.hi[j]:g}] "
                        + (
                            "(range, direction and max_shift)"
                            if spec.max_shift is not None
                            else "(range and direction)"
                        )
                    )
                if self.integer[j] and abs(z[j] - round(z[j])) > 1e-9:
                    out.append(f"`{spec.name}` = {z[j]:g} is not a whole number")
            elif round(z[j]) not in self.targets[j]:
                out.append(
                    f"`{spec.name}` may not change from {spec.categories[int(self.z0[j])]!r}"
                    f" to {spec.categories[round(z[j])]!r}"
                )
        if self.max_changes is not None and changed.sum() > self.max_changes:
            out.append(f"changes {int(changed.sum())} features, more than {self.max_changes}")
        return out

    def readable(self, Z: np.ndarray, *, nearest: bool = False) -> np.ndarray:
        """``Z`` ``(n, d)`` with each changed non-integer numeric value on a step a person can
        follow and a plan prints exactly: a cent (0.01), or a thousandth of the feature's
        scale where that is finer (down to 1e-6). By default a value is rounded away from the
        applicant's, never nearer to it than the method put it: a plan that stops just past
        the model's boundary (a MILP optimum, a tree split) then still crosses it as printed,
        instead of rounding back onto the split. ``nearest=True`` rounds to the nearest step,
        which may fall short (the caller lets the model judge it), except where that would
        reach or pass the applicant's own value. The allowed range wins over the step."""
        # (d,): no finer than the decimals a plan prints
        step = np.clip(10.0 ** (np.floor(np.log10(self.scale)) - 3), 10.0**-PLAN_DECIMALS, 0.01)
        decimals = np.round(-np.log10(step)).astype(int)
        moved = self.changed(Z) & self.numeric & ~self.integer & self.movable
        out = Z.copy()
        for j in np.flatnonzero(moved.any(axis=0)).tolist():
            rows, places = moved[:, j], int(decimals[j])
            value = Z[rows, j]
            up = value > self.z0[j]
            near = np.round(value, places)
            away = np.round(near + np.where(up, 1, -1) * step[j], places)
            short = np.where(up, near < value, near > value)  # nearer the applicant
            crossed = np.where(up, near <= self.z0[j], near >= self.z0[j])  # or past it
            use_away = crossed if nearest else short
            out[rows, j] = np.clip(np.where(use_away, away, near), self.lo[j], self.hi[j])
        return out

    def clip(self, Z: np.ndarray) -> np.ndarray:
        """Project changed numeric values of ``Z`` ``(n, d)`` onto the allowed range and whole
        steps (categorical codes are left alone; unmovable features are reset to ``z0``)."""
        out = Z.copy()
        num = self.numeric & self.movable
        moved = self.changed(Z) & num  # (n, d): an applicant outside the range may stay there
        clipped = np.clip(out, np.where(num, self.lo, -np.inf), np.where(num, self.hi, np.inf))
        clipped = np.where(self.integer, np.round(clipped), clipped)
        out = np.where(moved, clipped, out)
        out[:, ~self.movable] = self.z0[~self.movable]
        return out
