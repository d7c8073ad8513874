"""An augment run's folder (``out/``): the key that decides its rounds, and claiming it.

``out/key.json`` records what decides the rounds (settings, seed, a digest of the pool, the
training set and each model's weights, who labels). A folder holding rounds of another run is
an error that names what changed, never resumed and never deleted (its labels may be a
person's work); a folder of other files is refused before anything is written into it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from cfx.augment._common import round_quotas
from cfx.augment.rounds import CANDIDATES_FILE, DONE
from cfx.errors import ForeignRunError, counted
from cfx.files import write_atomic
from cfx.run_key import changes, json_sha256, same_but

log = logging.getLogger(__name__)

KEY_FILE = "key.json"
"""What a run folder's rounds were computed from; resuming needs the same."""
_KEY_NAMES = {
    "pool_sha256": "the pool images",
    "train_sha256": "the training images or labels",
    "classifier_sha256": "the classifier's weights",
    "generator_sha256": "the generator's weights",
    "classifier_settings": "the classifier's modules or their settings (e.g. TwoLogits' outputs)",
    "generator_settings": "the generator's modules or their settings",
    "labeller.oracle_settings": "the oracle's modules or their settings",
}


_SETTINGS = ("classifier_settings", "generator_settings")
"""Key entries a cfx of session 53 and before did not record (the weights' digests alone)."""


def settings_adopted(earlier: dict[str, Any], key: dict[str, Any]) -> dict[str, Any]:
    """``earlier`` (a stored key) with the models' settings digests it lacks taken from
    ``key``: a run's rounds from before they were recorded are resumed, as made with these
    models (their weights are still compared)."""
    adopted = {**earlier, **{k: key[k] for k in _SETTINGS if k in key and k not in earlier}}
    before, now = earlier.get("labeller"), key.get("labeller")
    if (
        isinstance(before, dict)
        and isinstance(now, dict)
        and before.get("kind") == "oracle"
        and "oracle_settings" not in before
    ):
        adopted["labeller"] = {**before, "oracle_settings": now.get("oracle_settings")}
    return adopted


def labeller_key(labeller: object) -> object:
    """Who labels a run's rounds, for its key: the labeller's own ``run_key()`` (cfx's
    labellers: an oracle's weights, or a person), else its type's name."""
    own = getattr(labeller, "run_key", None)
    if callable(own):
        return own()
    kind = type(labeller)
    return {"kind": f"{kind.__module__}.{kind.__qualname__}"}


_PLAN = {"budget", "rounds"}
"""The settings a run may go on with changed (:func:`_replans`)."""


def _replans(earlier: dict[str, Any], key: dict[str, Any], present: int) -> bool:
    """Whether ``key`` is the run ``earlier`` describes with another budget or number of
    rounds that leaves the ``present`` round folders as they are: every other setting the
    same, no fewer rounds than before, and each present round's number of labels unchanged
    (the budget split evenly: ``budget=200, rounds=2`` goes on as ``400, 4``, not as
    ``300, 4``, whose first round labels 75)."""
    if not same_but(earlier, key, _PLAN):
        return False
    try:
        before = round_quotas(int(earlier["budget"]), int(earlier["rounds"]))
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return False
    now = round_quotas(int(key["budget"]), int(key["rounds"]))
    return len(now) >= max(len(before), present) and before[:present] == now[:present]


def _adopt_unread_models(out: Path, earlier: dict[str, Any], key: dict[str, Any]) -> dict:
    """``earlier`` with the model digests an older cfx recorded as None (a generator or an
    oracle that is no ``nn.Module``, whose modules it did not read) taken from ``key``, with
    a warning: they cannot be compared, and refusing the run would lose its rounds."""
    adopted = dict(earlier)
    said = []
    if earlier.get("generator_sha256", "") is None and key.get("generator_sha256") is not None:
        adopted["generator_sha256"] = key["generator_sha256"]
        said.append("generator")
    before, now = earlier.get("labeller"), key.get("labeller")
    if (
        isinstance(before, dict)
        and isinstance(now, dict)
        and before.get("oracle_sha256", "") is None
        and now.get("oracle_sha256") is not None
        and {**before, "oracle_sha256": now["oracle_sha256"]} == now
    ):
        adopted["labeller"] = now
        said.append("labeller's oracle")
    if said:
        log.warning(
            "%s: rounds from a cfx that could not read the %s's weights (not an nn.Module); "
            "resuming them as made with this one, so pass the same models as the run that "
            "wrote them",
            out,
            " or the ".join(said),
        )
    return adopted


def walk_key(key: dict[str, Any]) -> str:
    """The digest of a run key (as :func:`claim` returns it) without its budget and rounds,
    which a round's saved walk records: a run that goes on with more rounds
    (:func:`_replans`, which keeps each present round's labels) finds a waiting round's walk
    still its own."""
    return json_sha256({k: v for k, v in key.items() if k not in _PLAN})


def claim(out: Path, key: dict[str, Any], rounds_wanted: int) -> dict[str, Any]:
    """Make ``out`` the folder of the run ``key`` describes (written to :data:`KEY_FILE`):
    resume its rounds if the same key computed them, refuse it (naming what changed) if
    another run's rounds are there, or if it holds files of something else. ``out`` is no
    file (:meth:`~cfx.augment.ActiveLearner.augment` checks that before the key's digests).
    Returns the key as written (JSON's lists and strings)."""
    key = json.loads(json.dumps(key, default=str))  # as read back: lists, strings
    stored = out / KEY_FILE
    folders = sorted(out.glob("round_*")) if out.is_dir() else []
    rounds = len(folders)
    # without a key: rounds an older cfx worked on, unless the folders hold only
    # labelling tasks (copied in, as the relabel warning advises: a person's labels)
    worked = any((r / name).exists() for r in folders for name in (DONE, "train", CANDIDATES_FILE))
    if rounds and not stored.exists() and not worked:
        rounds = 0  # a fresh run, which reads the copied tasks' labels
    other = (  # a folder of something else: its model/ and summary.json were overwritten
        sorted(
            p.name
            for p in out.iterdir()
            if not p.name.startswith((".", "round_")) and p.name != KEY_FILE
        )
        if out.is_dir() and not stored.exists() and not rounds
        else []
    )
    if other:  # not a ForeignRunError: the demo deletes another run's folder on one
        raise FileExistsError(
            f"`out` {out} holds files that are not a cfx augment run's "
            f"({', '.join(other[:5])}{', ...' if len(other) > 5 else ''}), which the run "
            f"would overwrite; expected a new or empty folder, or a run's own (with its "
            f"{KEY_FILE})"
        )
    done = sum((r / DONE).exists() for r in folders) if rounds else 0
    if rounds and not stored.exists():  # rounds from before run keys: adopt them
        log.warning(
            "%s holds %d round(s) without a %s (an older cfx wrote them); resuming them "
            "as this run's, so pass the same arguments as the run that wrote them",
            out,
            rounds,
            KEY_FILE,
        )
    elif rounds:
        try:
            earlier = json.loads(stored.read_text())
        except (OSError, ValueError):
            earlier = None
        if isinstance(earlier, dict) and "labeller" not in earlier:
            log.warning(
                "%s: rounds from a cfx that did not record who labels them; resuming them "
                "as labelled by %s, so pass the same labeller as the run that wrote them",
                out,
                (key["labeller"] or {}).get("kind", "this labeller"),
            )
            earlier = {**earlier, "labeller": key["labeller"]}
        if isinstance(earlier, dict):
            earlier = _adopt_unread_models(out, settings_adopted(earlier, key), key)
        if isinstance(earlier, dict) and earlier != key and _replans(earlier, key, rounds):
            log.warning(
                "%s: the run goes on with a budget of %s labels in %s rounds (it had %s in %s); "
                "the %s it has %s kept as %s, the later rounds are walked and labelled",
                out,
                key["budget"],
                key["rounds"],
                earlier.get("budget"),
                earlier.get("rounds"),
                counted(rounds, "round"),
                "is" if rounds == 1 else "are",
                "it is" if rounds == 1 else "they are",
            )
            earlier = key
        if earlier != key:
            if isinstance(earlier, dict):
                before, now = earlier.get("labeller"), key["labeller"]
                if (
                    isinstance(before, dict)
                    and isinstance(now, dict)
                    and before.get("kind") != now.get("kind")
                ):  # another kind of labeller: its own settings follow from that
                    earlier = {**earlier, "labeller": {"kind": before.get("kind")}}
                    now = {"kind": now.get("kind")}
                why = changes(earlier, {**key, "labeller": now}, _KEY_NAMES)
                if same_but(earlier, key, _PLAN):
                    why += (  # a budget or rounds change that relabels a round: say what goes
                        "; a run goes on with more rounds only when each round it has keeps its "
                        "number of labels (the budget is split evenly over the rounds, so "
                        "budget 200 in 2 rounds goes on as 400 in 4)"
                    )
            else:  # whose rounds they are is unknown: "pass the arguments of the run that
                # wrote them" could not help (no arguments match an unreadable key)
                raise ForeignRunError(
                    f"`out` {out} holds {rounds} round(s) ({done} finished) but its {KEY_FILE} "
                    f"cannot be read, so which run they belong to is unknown: delete "
                    f"{stored} to resume them as this run's (with the arguments of the run "
                    "that wrote them), or pass another folder"
                )
            raise ForeignRunError(
                f"`out` {out} holds {rounds} round(s) of another run ({done} "
                f"finished; {why}); pass the "
                "arguments of the run that wrote them, or another folder (labels a person "
                "gave stay in its round_*/task folders)"
            )
    if rounds and done >= rounds_wanted:  # the same run's rounds: say so, as training does
        log.warning("the run in %s already finished (%s)", out, counted(done, "round"))
    elif rounds:
        log.warning("resuming the run in %s: %d of %d rounds done", out, done, rounds_wanted)
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(key, indent=1) + "\n"
    if not stored.is_file() or stored.read_text() != text:  # rewritten only when new
        write_atomic(stored, text)
    return key
