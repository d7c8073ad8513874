"""Group accuracies for shortcut studies: one accuracy per (class, attribute) cell."""

from __future__ import annotations

from torch import Tensor

from cfx.errors import check


def group_accuracies(
    pred: Tensor,
    labels: Tensor,
    attribute: Tensor,
    *,
    class_names: tuple[str, ...] = ("healthy", "tumour"),
    attribute_names: tuple[str, str] = ("notag", "tag"),
) -> dict[str, float]:
    """Overall accuracy, accuracy per ``class x attribute`` group, and the worst group.

    ``pred``, ``labels`` ``(N,)`` class indices, ``attribute`` ``(N,)`` bool or 0/1 (e.g. the
    scanner marker); ``class_names`` one unique name per class, ``attribute_names`` two (absent,
    present). Keys: ``accuracy``, ``{class}_{attribute}`` for every non-empty group, and
    ``worst_group`` (the minimum over the groups). A shortcut shows as a worst group far below
    the overall accuracy.
    """
    for name, v in (("pred", pred), ("labels", labels), ("attribute", attribute)):
        check(
            isinstance(v, Tensor),
            TypeError,
            f"`{name}` must be a torch tensor (torch.as_tensor converts a numpy array), got "
            f"{type(v).__name__}",
        )
    for name, v in (("pred", pred), ("labels", labels)):
        check(
            not v.is_floating_point(),
            TypeError,
            f"`{name}` must hold class indices (an integer tensor), got {v.dtype}; for "
            "probabilities or logits pass their argmax",
        )
    check(
        pred.shape == labels.shape == attribute.shape and pred.ndim == 1,
        ValueError,
        f"`pred`, `labels` and `attribute` must be (N,) of one length, got "
        f"{tuple(pred.shape)}, {tuple(labels.shape)}, {tuple(attribute.shape)}",
    )
    check(
        bool(((attribute == 0) | (attribute == 1)).all()),
        ValueError,  # probabilities read as all 'tag'; values 0/1/2 merged 1 and 2
        "`attribute` must be bool or 0/1 (absent / present), got values "
        f"{sorted({float(v) for v in attribute.unique()[:6].tolist()})}",
    )
    for name, names, count in (
        ("class_names", class_names, None),
        ("attribute_names", attribute_names, 2),
    ):
        check(
            isinstance(names, tuple | list)
            and all(isinstance(n, str) for n in names)
            and len(set(names)) == len(names)
            and (count is None or len(names) == count),
            ValueError,  # a repeated name overwrote its group; a third attribute name made one
            f"`{name}` must be a tuple of {'two' if count else 'unique'} distinct names, got "
            f"{names!r}",
        )
    unnamed = sorted({int(c) for c in labels.unique()} - set(range(len(class_names))))
    check(
        not unnamed,
        ValueError,
        f"`labels` hold classes {unnamed} that `class_names` {class_names} does not name; "
        "pass one name per class so no group is left out of `worst_group`",
    )
    out = {"accuracy": float((pred == labels).float().mean())}
    groups = {}
    for c, cname in enumerate(class_names):
        for a, aname in enumerate(attribute_names):
            sel = (labels == c) & (attribute.bool() == bool(a))
            if bool(sel.any()):
                groups[f"{cname}_{aname}"] = float((pred[sel] == c).float().mean())
    out |= groups
    out["worst_group"] = min(groups.values()) if groups else float("nan")
    return out
