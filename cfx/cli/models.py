"""The ``--classifier`` / ``--generator`` / ``--oracle`` options shared by the subcommands."""

from __future__ import annotations

from pathlib import Path

from cfx.errors import CfxError, UnknownNameError


def model_name(flag: str, name: str, want: str) -> str:
    """``name`` if it is a zoo model, model folder or hub id of role ``want`` ("generator",
    "classifier"), else an error that names ``flag`` and says where the model belongs. Reads
    a folder's ``config.json`` only, not its weights."""
    from cfx.zoo import ZOO, describe

    fits = sorted(n for n, e in ZOO.items() if e.role == want)
    extra = " or 'none'" if flag == "--oracle" else ""
    if name not in ZOO and "/" not in name and not Path(name).expanduser().exists():
        raise UnknownNameError(
            f"`{flag}`: unknown zoo {want} {name!r}; expected one of {fits}{extra}, a model "
            "folder (save_pretrained; `cfx train ... --out DIR` writes DIR/model) or a hub id"
        )
    try:
        got = describe(name).role
    except CfxError as err:
        raise type(err)(f"`{flag}`: {err}") from err
    if got != want:
        where = {"generator": " (pass it as --generator)", "classifier": "", "segmenter": ""}
        raise ValueError(
            f"`{flag}`: {name!r} is a {got}{where[got]}; expected a {want}: one of {fits}{extra} "
            f"or a folder holding one"
        )
    return name
