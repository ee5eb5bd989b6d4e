"""Regenerate ``tests/data/md-test-images`` from the full set in ``../shared`` (maintainers only).

The tests never read ``../shared``: they use this curated, downscaled copy, which is committed.
Thirteen of the 31 MegaDetector test photos, chosen to cover upper-case ``.JPG`` names, grayscale
night frames (one stored as a single-channel JPEG), photos with many detections, large and tiny
boxes, photos with no detection or only low-confidence ones, and twelve datasets. Each photo is
downscaled so its long side is at most 1280 px and re-encoded (quality 75, no EXIF); the
MegaDetector boxes are normalized, so they stay valid under the uniform downscale.

    python tests/data/make_md_test_images.py [SHARED_MD_TEST_IMAGES]
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
OUT = HERE / "md-test-images"
DEFAULT_SOURCE = HERE.parents[2] / "shared" / "data" / "md-test-images"
LONG_SIDE = 1280
QUALITY = 75

#: file name -> stored as single-channel ("L") JPEG
CHOSEN = {
    "snapshot_serengeti_S5_U10_U10_R4_S5_U10_R4_IMAG3595.JPG": False,  # 19 boxes, small ones
    "idaho_camera_traps_loc_0044_loc_0044_im_005629.jpg": False,  # 11 boxes
    "wcs_camera_traps_animals_0090_1439.jpg": False,  # 9 boxes
    "snapshot_camdeboo_CDB_S1_A05_A05_R2_CDB_S1_A05_R2_IMAG0084.JPG": False,  # 6 boxes
    "snapshot_kruger_KRU_S1_25_25_R1_KRU_S1_25_R1_IMAG0012.JPG": False,  # one large box
    "snapshot_kgalagadi_KGA_S1_B06_B06_R1_KGA_S1_B06_R1_IMAG2032.JPG": False,
    "snapshot_enonkishu_ENO_S1_B05_B05_R2_ENO_S1_B05_R2_IMAG0624.JPG": False,  # a baboon
    "nacti_part3_sub308_CA-11_0001325.jpg": False,  # no detection at all
    "caltech_camera_traps_58a022a4-23d2-11e8-a6a3-ec086b02610b.jpg": False,  # only conf < 0.2
    "wellington_camera_traps_121016192402044a1132.JPG": False,  # night, grayscale content
    "channel_islands_camera_traps_loc-h500ee07133550_010_643.jpg": False,  # night
    "missouri_camera_traps_Set1_1.02-Agouti_SEQ89823_SEQ89823_IMG_0002.JPG": False,  # tiny box
    "wcs_camera_traps_animals_0245_1477.jpg": True,  # night, stored single-channel
}


def main(source: Path = DEFAULT_SOURCE) -> None:
    md = json.loads((source / "md_output_v5a.json").read_text())
    kept = [im for im in md["images"] if im["file"] in CHOSEN]
    missing = set(CHOSEN) - {im["file"] for im in kept}
    if missing:
        raise SystemExit(f"not in {source}: {sorted(missing)}")
    shutil.rmtree(OUT / "images", ignore_errors=True)  # README.md is kept
    (OUT / "images").mkdir(parents=True)
    for im in kept:
        with Image.open(source / "images" / im["file"]) as img:
            img = img.convert("L" if CHOSEN[im["file"]] else "RGB")
            img.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
            img.save(OUT / "images" / im["file"], "JPEG", quality=QUALITY, optimize=True)
    md["images"] = kept
    (OUT / "md_output_v5a.json").write_text(json.dumps(md, indent=1) + "\n")
    shutil.copy(source / "LICENSE-MegaDetector-repo", OUT / "LICENSE-MegaDetector-repo")
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"{len(kept)} photos, {size / 1e6:.2f} MB in {OUT}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE)
