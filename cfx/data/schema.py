"""Feature schemas for tabular recourse: what each feature is and what may change, at what cost.

:class:`FeatureSpec` describes one feature (kind, range or categories, actionability);
:class:`FeatureSchema` is an ordered, immutable collection of them with validation of data
frames. Override defaults per query with :meth:`FeatureSchema.replace`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import pandas as pd

from cfx.errors import UnknownNameError

Kind = Literal["numeric", "ordinal", "categorical"]
Direction = Literal["any", "increase", "decrease"]

_KINDS = ("numeric", "ordinal", "categorical")
_DIRECTIONS = ("any", "increase", "decrease")
_SHOW = 5  # how many offending values an error message lists


def _is_number(value: object) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _as_str_tuple(value: object, what: str) -> tuple[str, ...]:
    """A tuple of str from a tuple, list or 1-D array (``df["col"].unique()``, an ``Index``),
    in its order."""
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and getattr(value, "ndim", 1) == 1:  # numpy / pandas, not a scalar
        value = tolist()
    if isinstance(value, str) or not isinstance(value, tuple | list):
        raise TypeError(f"{what} must be a tuple of str, got {value!r}")
    items = tuple(value)
    bad = [item for item in items if not isinstance(item, str)]
    if bad:
        hint = (
            "; write codes as strings, e.g. ('1', '2'): the model is handed the training "
            "column's own values"
            if all(
                isinstance(b, int | float) and not isinstance(b, bool) and b == b  # not NaN
                for b in bad
            )
            else ""
        )
        if any(b is None or (isinstance(b, float) and b != b) for b in bad):
            hint = "; a missing value (NaN/None) is not a category: drop it"
        raise TypeError(f"{what} must contain only str, got {bad[:_SHOW]!r}{hint}")
    return items


@dataclass(frozen=True)
class FeatureSpec:
    """What one feature is and how a counterfactual may change it.

    ``kind``: ``"numeric"`` (``lower``/``upper`` bound the values, ``integer`` asks for whole
    steps), ``"ordinal"`` (``categories`` in order, low -> high in their natural meaning;
    ``direction`` refers to that order) or ``"categorical"`` (``categories`` unordered;
    ``transitions`` optionally whitelists, per source category, the categories it may change to:
    a category missing from the mapping may not change; ``None`` allows any change).
    ``transition_costs`` (categorical features) prices single changes, per source category, in
    steps: ``{"< 0 DM": {">= 200 DM": 2}}`` makes that jump cost twice ``cost``; a change not
    listed is one step, as is any change of a categorical feature without it (an ordinal change
    costs one step per rank moved).

    ``mutable=False`` wins over ``direction`` and ``transitions`` (they are kept, so that a
    per-query ``replace(name, mutable=True)`` restores them). ``cost`` weights this feature's
    change in an action cost (> 0). ``max_shift`` (numeric features, > 0) caps how far a plan
    may move the value from the applicant's own, in the feature's units (German Credit's age:
    a wait of at most 5 years), where ``lower``/``upper`` bound the value itself.
    """

    name: str
    kind: Kind
    categories: tuple[str, ...] = ()
    lower: float | None = None
    upper: float | None = None
    integer: bool = False
    mutable: bool = True
    direction: Direction = "any"
    cost: float = 1.0
    description: str = ""
    # a dict is unhashable: excluded from the hash, stored read-only (see __post_init__)
    transitions: Mapping[str, tuple[str, ...]] | None = field(default=None, hash=False)
    max_shift: float | None = None
    transition_costs: Mapping[str, Mapping[str, float]] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"`name` must be a non-empty str, got {self.name!r}")
        where = f"feature `{self.name}`"
        if self.kind not in _KINDS:
            raise ValueError(f"{where}: `kind` must be one of {_KINDS}, got {self.kind!r}")
        if self.direction not in _DIRECTIONS:
            raise ValueError(
                f"{where}: `direction` must be one of {_DIRECTIONS}, got {self.direction!r}"
            )
        for flag in ("integer", "mutable"):  # np.bool_ too: a schema built from a DataFrame
            if not isinstance(getattr(self, flag), bool | np.bool_):
                raise TypeError(f"{where}: `{flag}` must be a bool, got {getattr(self, flag)!r}")
            object.__setattr__(self, flag, bool(getattr(self, flag)))
        if not _is_number(self.cost) or not math.isfinite(self.cost) or self.cost <= 0:
            raise ValueError(f"{where}: `cost` must be a finite number > 0, got {self.cost!r}")
        if not isinstance(self.description, str):
            raise TypeError(f"{where}: `description` must be a str, got {self.description!r}")
        categories = _as_str_tuple(self.categories, f"{where}: `categories`")
        object.__setattr__(self, "categories", categories)

        if self.kind == "numeric":
            self._check_numeric(where)
        elif self.kind in ("ordinal", "categorical"):
            self._check_categories(where)
        else:
            raise ValueError(f"{where}: `kind` must be one of {_KINDS}, got {self.kind!r}")

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickled (and deep-copied) as its fields with plain dicts: the read-only mapping
        views ``transitions`` and ``transition_costs`` are stored as cannot be pickled, so a
        schema with them (German Credit's), and a fitted ``Recourse`` holding one, could not
        be saved with pickle or joblib."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.transitions is not None:
            fields["transitions"] = dict(self.transitions)
        if self.transition_costs is not None:
            fields["transition_costs"] = {k: dict(v) for k, v in self.transition_costs.items()}
        return (_spec_from_fields, (fields,))

    def _check_numeric(self, where: str) -> None:
        if self.categories:
            raise ValueError(
                f"{where}: a numeric feature takes no `categories`, got {self.categories!r}"
            )
        for rule in ("transitions", "transition_costs"):
            if getattr(self, rule) is not None:
                raise ValueError(f"{where}: `{rule}` is for categorical features, not numeric")
        for bound in ("lower", "upper"):
            value = getattr(self, bound)
            if value is None:
                continue
            if not _is_number(value) or not math.isfinite(value):
                raise ValueError(
                    f"{where}: `{bound}` must be a finite number or None, got {value!r}"
                )
            if self.integer and value != math.floor(value):
                raise ValueError(
                    f"{where}: `{bound}` must be whole for an integer feature, got {value!r}"
                )
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(
                f"{where}: `lower` must be <= `upper`,"
                f" got lower={self.lower!r} > upper={self.upper!r}"
            )
        change = self.max_shift
        if change is not None and not (_is_number(change) and math.isfinite(change) and change > 0):
            raise ValueError(
                f"{where}: `max_shift` must be a finite number > 0 or None, got {change!r}"
            )

    def _check_categories(self, where: str) -> None:
        kind = f"{'an' if self.kind == 'ordinal' else 'a'} {self.kind} feature"
        if len(self.categories) < 2:
            raise ValueError(
                f"{where}: {kind} needs at least 2 `categories`, got {self.categories!r}"
            )
        duplicates = sorted({c for c in self.categories if self.categories.count(c) > 1})
        if duplicates:
            raise ValueError(f"{where}: `categories` must be unique, got duplicates {duplicates!r}")
        if self.lower is not None or self.upper is not None or self.integer:
            raise ValueError(f"{where}: `lower`/`upper`/`integer` are for numeric features only")
        if self.max_shift is not None:
            raise ValueError(
                f"{where}: `max_shift` is for numeric features; {kind} takes `transitions`"
            )
        if self.kind == "categorical" and self.direction != "any":
            raise ValueError(
                f"{where}: `direction` needs an order; a categorical feature takes `transitions`"
                f" instead, got direction={self.direction!r}"
            )
        self._check_transition_costs(where)
        if self.transitions is None:
            return
        if self.kind != "categorical":
            raise ValueError(f"{where}: `transitions` is for categorical features, not {self.kind}")
        if not isinstance(self.transitions, Mapping):
            raise TypeError(
                f"{where}: `transitions` must be a mapping or None, got {self.transitions!r}"
            )
        known = set(self.categories)
        frozen: dict[str, tuple[str, ...]] = {}
        for source, targets in self.transitions.items():
            allowed = _as_str_tuple(targets, f"{where}: `transitions[{source!r}]`")
            unknown = [c for c in (source, *allowed) if c not in known]
            if unknown:
                raise ValueError(
                    f"{where}: `transitions` names unknown categories {unknown!r};"
                    f" expected some of {self.categories!r}"
                )
            frozen[source] = allowed
        object.__setattr__(self, "transitions", MappingProxyType(frozen))

    def _check_transition_costs(self, where: str) -> None:
        costs = self.transition_costs
        if costs is None:
            return
        if self.kind != "categorical":
            raise ValueError(
                f"{where}: `transition_costs` is for categorical features; an {self.kind} "
                "change costs one step per rank moved"
            )
        if not isinstance(costs, Mapping):
            raise TypeError(f"{where}: `transition_costs` must be a mapping or None, got {costs!r}")
        known = set(self.categories)
        frozen: dict[str, Mapping[str, float]] = {}
        for source, steps in costs.items():
            what = f"{where}: `transition_costs[{source!r}]`"
            if not isinstance(steps, Mapping):
                raise TypeError(f"{what} must map target categories to steps, got {steps!r}")
            unknown = [c for c in (source, *steps) if c not in known]
            if unknown:
                raise ValueError(
                    f"{where}: `transition_costs` names unknown categories {unknown!r};"
                    f" expected some of {self.categories!r}"
                )
            if source in steps:
                raise ValueError(f"{what} prices staying at {source!r}, which costs nothing")
            bad = {t: v for t, v in steps.items() if not (_is_number(v) and math.isfinite(v))}
            bad |= {t: v for t, v in steps.items() if t not in bad and not v > 0}
            if bad:
                raise ValueError(f"{what}: steps must be finite numbers > 0, got {bad!r}")
            if steps:  # a source that prices nothing is left out
                frozen[source] = MappingProxyType({t: float(v) for t, v in steps.items()})
        # nothing priced is the default: None (a batch keyed on the schema reads it so)
        object.__setattr__(self, "transition_costs", MappingProxyType(frozen) if frozen else None)

    def _rank(self, source: str, method: str) -> int:
        """``source``'s index among the categories, for ``method``: an error for a numeric
        feature or a category it does not have."""
        if self.kind == "numeric":
            raise TypeError(f"feature `{self.name}` is numeric; `{method}` is for categories")
        if source not in self.categories:
            raise ValueError(
                f"feature `{self.name}`: unknown category {source!r};"
                f" expected one of {self.categories!r}"
            )
        return self.categories.index(source)

    def step_costs(self, source: str) -> tuple[float, ...]:
        """Per category, in schema order, the steps (times ``cost``) of changing from ``source``
        to it: 0 for ``source``, the ranks moved for an ordinal feature, else
        ``transition_costs``' value or 1. Whether a change is allowed is
        :meth:`allowed_targets`' question."""
        rank = self._rank(source, "step_costs")
        if self.kind == "ordinal":
            return tuple(float(abs(i - rank)) for i in range(len(self.categories)))
        priced = (self.transition_costs or {}).get(source, {})
        return tuple(0.0 if c == source else priced.get(c, 1.0) for c in self.categories)

    def allowed_targets(self, source: str) -> tuple[str, ...]:
        """Categories that ``source`` may change to (never ``source`` itself), in schema order."""
        self._rank(source, "allowed_targets")
        if not self.mutable:
            return ()
        others = tuple(c for c in self.categories if c != source)
        if self.kind == "ordinal":
            rank = self.categories.index(source)
            if self.direction == "any":
                return others
            elif self.direction == "increase":
                return self.categories[rank + 1 :]
            elif self.direction == "decrease":
                return self.categories[:rank]
            else:
                raise ValueError(f"unknown direction {self.direction!r}")
        elif self.kind == "categorical":
            if self.transitions is None:
                return others
            whitelist = self.transitions.get(source, ())
            return tuple(c for c in others if c in whitelist)
        else:
            raise ValueError(f"unknown kind {self.kind!r}")


def _spec_from_fields(fields: dict[str, Any]) -> FeatureSpec:
    """A :class:`FeatureSpec` from its fields (unpickling; validated as any other)."""
    return FeatureSpec(**fields)


@dataclass(frozen=True)
class FeatureSchema:
    """The features of a tabular data set, in column order, and the name of its label."""

    features: tuple[FeatureSpec, ...]
    target: str

    def __post_init__(self) -> None:
        if isinstance(self.features, FeatureSpec) or not isinstance(self.features, tuple | list):
            raise TypeError(f"`features` must be a tuple of FeatureSpec, got {self.features!r}")
        features = tuple(self.features)
        bad = [f for f in features if not isinstance(f, FeatureSpec)]
        if bad or not features:
            raise TypeError(
                f"`features` must be a non-empty tuple of FeatureSpec, got {bad[:_SHOW]!r}"
            )
        object.__setattr__(self, "features", features)
        names = [f.name for f in features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"feature names must be unique, got duplicates {duplicates!r}")
        if not isinstance(self.target, str) or not self.target:
            raise TypeError(f"`target` must be a non-empty str, got {self.target!r}")
        if self.target in names:
            raise ValueError(f"`target` {self.target!r} must not also be a feature")

    @property
    def names(self) -> tuple[str, ...]:
        """Every feature's name, in the schema's order."""
        return tuple(f.name for f in self.features)

    @property
    def immutable(self) -> tuple[str, ...]:
        """The features recourse may not change (``mutable=False``), in the schema's order."""
        return tuple(f.name for f in self.features if not f.mutable)

    @property
    def numeric(self) -> tuple[str, ...]:
        """The ``kind="numeric"`` features, in the schema's order (``numeric + categorical`` =
        all)."""
        return tuple(f.name for f in self.features if f.kind == "numeric")

    @property
    def categorical(self) -> tuple[str, ...]:
        """Every feature with categories, ordered or not (``numeric + categorical`` = all)."""
        return tuple(f.name for f in self.features if f.kind != "numeric")

    @property
    def ordinal(self) -> tuple[str, ...]:
        """The ordered subset of :attr:`categorical`."""
        return tuple(f.name for f in self.features if f.kind == "ordinal")

    def __getitem__(self, name: str) -> FeatureSpec:
        for spec in self.features:
            if spec.name == name:
                return spec
        raise UnknownNameError(f"unknown feature {name!r}; known features: {', '.join(self.names)}")

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[FeatureSpec]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    def replace(self, name: str, **changes: Any) -> FeatureSchema:
        """A new schema with feature ``name``'s fields changed (validated); ``self`` is unchanged.

        Example: ``schema.replace("age_in_years", mutable=False)`` for a query that must not age.
        """
        spec = self[name]
        fields = {f.name for f in dataclasses.fields(FeatureSpec)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise TypeError(
                f"unknown FeatureSpec fields {unknown!r}; expected some of {sorted(fields)}"
            )
        new = dataclasses.replace(spec, **changes)
        features = tuple(new if f.name == name else f for f in self.features)
        return FeatureSchema(features=features, target=self.target)

    def validate(self, df: pd.DataFrame) -> None:
        """Raise if ``df`` does not fit the schema; extra columns (e.g. the label) are allowed.

        Checks, in column order: missing columns, NaN, non-numeric or non-whole values in numeric
        columns, values outside ``[lower, upper]``, values outside a feature's ``categories``.
        """
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"`df` must be a pandas DataFrame, got {type(df).__name__}")
        missing = [n for n in self.names if n not in df.columns]
        if missing:
            raise ValueError(f"`df` is missing columns {missing!r} (has {len(df.columns)} columns)")
        for spec in self.features:
            column = df[spec.name]
            nan = column.isna()
            if nan.any():
                rows = list(df.index[nan.to_numpy()][:_SHOW])
                raise ValueError(
                    f"column `{spec.name}` has {int(nan.sum())} missing (NaN) values,"
                    f" first rows {rows!r}"
                )
            if spec.kind == "numeric":
                _validate_numeric(spec, column)
            elif spec.kind in ("ordinal", "categorical"):
                unknown = sorted({str(v) for v in column.unique()} - set(spec.categories))
                if unknown:
                    raise ValueError(
                        f"column `{spec.name}` has unknown categories {unknown[:_SHOW]!r};"
                        f" allowed: {spec.categories!r}"
                    )
            else:
                raise ValueError(f"unknown kind {spec.kind!r}")


def _validate_numeric(spec: FeatureSpec, column: pd.Series) -> None:
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        coerced = pd.to_numeric(column, errors="coerce")
        bad = list(column[coerced.isna()].unique()[:_SHOW])
        raise TypeError(
            f"column `{spec.name}` must be numeric, got dtype {column.dtype}"
            + (f" with non-numeric values {bad!r}" if bad else "")
        )
    values = column.to_numpy(dtype=np.float64)
    infinite = np.isinf(values)  # passed a `lower=0` bound; recourse refused it (NaN: missing)
    if infinite.any():
        raise ValueError(
            f"column `{spec.name}` must hold finite numbers, got "
            f"{values[infinite][:_SHOW].tolist()!r}"
        )
    if spec.integer:
        # rounding noise of a float column passes, as recourse takes it (29.999999999999996)
        fractional = np.abs(values - np.round(values)) > 1e-9
        if fractional.any():
            raise ValueError(
                f"column `{spec.name}` must hold whole numbers,"
                f" got {values[fractional][:_SHOW].tolist()!r}"
            )
    low = -np.inf if spec.lower is None else spec.lower
    high = np.inf if spec.upper is None else spec.upper
    outside = (values < low) | (values > high)
    if outside.any():
        raise ValueError(
            f"column `{spec.name}` has {int(outside.sum())} values"
            f" outside [{spec.lower}, {spec.upper}],"
            f" e.g. {values[outside][:_SHOW].tolist()!r}"
        )


# ------------------------------------------------------------------------------------------------
# German Credit
