"""Derive cfx's small brain-anatomy file from the MNI ICBM152 2009 template.

Run once by a maintainer (needs ``nibabel`` and the ``nilearn`` wheel, which ships the template
under ``nilearn/datasets/data/``); the result, ``cfx/data/anatomy/icbm152_axial.npz``, is
committed so that run time needs neither nilearn nor a network::

    pip download --no-deps nilearn -d /tmp/nl && unzip -q /tmp/nl/nilearn-*.whl -d /tmp/nl
    python -m cfx.data.derive_anatomy /tmp/nl/nilearn/datasets/data

What it does: for axial levels z = -14 .. +64 mm (every 2 mm, 40 slices covering the cerebrum
from the temporal lobes to the vertex region), it takes the grey-matter and white-matter
probability maps, builds an intracranial mask (filled GM + WM), derives CSF as intracranial
minus tissue, crops a square 200 mm field of view centred on the brain and resamples it to 128 x 128
(1.5625 mm pixels, anterior up, radiological left-right not flipped). Maps are stored as uint8
(0..255) probabilities in a compressed ``.npz`` (no pickle).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

Z_LEVELS_MM = np.arange(-14, 66, 2)  # 40 axial levels
FOV_MM = 200.0
SIZE = 128
OUT = Path(__file__).with_name("anatomy") / "icbm152_axial.npz"


def _load(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib  # maintainer-only dependency

    img = nib.load(str(folder / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz"))
    return np.asarray(img.get_fdata(), dtype=np.float64) / 255.0, img.affine


def derive(folder: Path) -> dict[str, np.ndarray]:
    from scipy import ndimage

    gm, affine = _load(folder, "gm")
    wm, _ = _load(folder, "wm")
    inv = np.linalg.inv(affine)
    tissue = gm + wm
    brain = tissue > 0.3
    # brain bounding box centre in mm (x, y)
    idx = np.argwhere(brain)
    lo, hi = idx.min(0), idx.max(0)
    centre_vox = (lo + hi) / 2.0
    centre_mm = affine[:3, :3] @ centre_vox + affine[:3, 3]
    # output pixel (row r, col c): anterior up -> y decreases with r; x increases with c
    coords = (np.arange(SIZE) + 0.5) / SIZE * FOV_MM - FOV_MM / 2.0
    yy = centre_mm[1] - coords[:, None] * np.ones((1, SIZE))
    xx = centre_mm[0] + np.ones((SIZE, 1)) * coords[None, :]
    out: dict[str, list[np.ndarray]] = {"gm": [], "wm": [], "csf": []}
    for z in Z_LEVELS_MM:
        pts = np.stack([xx.ravel(), yy.ravel(), np.full(xx.size, float(z)), np.ones(xx.size)])
        vox = (inv @ pts)[:3]
        g = ndimage.map_coordinates(gm, vox, order=1).reshape(SIZE, SIZE)
        w = ndimage.map_coordinates(wm, vox, order=1).reshape(SIZE, SIZE)
        tis = np.clip(g + w, 0, 1)
        intracranial = ndimage.binary_closing(tis > 0.2, iterations=3)
        intracranial = ndimage.binary_fill_holes(intracranial)
        soft = ndimage.gaussian_filter(intracranial.astype(np.float64), 0.7)
        csf = np.clip(soft - tis, 0, 1)
        for key, arr in (("gm", g), ("wm", w), ("csf", csf)):
            out[key].append(np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8))
    result = {k: np.stack(v) for k, v in out.items()}  # each (S, 128, 128)
    result["z_mm"] = Z_LEVELS_MM.astype(np.int16)
    return result


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m cfx.data.derive_anatomy NILEARN_DATA_DIR")
    arrays = derive(Path(argv[0]))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, allow_pickle=False, **arrays)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
