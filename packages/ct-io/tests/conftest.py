"""Shared fixtures of the ct-io tests: small CCT/MD documents and the real MD test data
(``md_test``, the committed photo set, comes from the root conftest)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def md_test_json(md_test: Path) -> Path:
    """The real MegaDetector v5a output of the committed real-photo fixture set."""
    return md_test / "md_output_v5a.json"


def cct_doc(**overrides: Any) -> dict[str, Any]:
    """A small valid CCT document (two images at two locations, a blank, a box)."""
    doc: dict[str, Any] = {
        "info": {"version": "1.0", "description": "test"},
        "images": [
            {
                "id": "a",
                "file_name": "loc1/a.jpg",
                "width": 640,
                "height": 480,
                "location": "loc1",
                "seq_id": "s1",
                "seq_num_frames": 2,
                "frame_num": 0,
                "datetime": "2020-01-01 10:00:00",
            },
            {
                "id": "b",
                "file_name": "loc1/b.jpg",
                "width": 640,
                "height": 480,
                "location": "loc1",
                "seq_id": "s1",
                "seq_num_frames": 2,
                "frame_num": 1,
                "datetime": "2020-01-01 10:00:01",
            },
            {"id": "c", "file_name": "loc2/c.jpg", "width": 640, "height": 480, "location": "loc2"},
        ],
        "categories": [
            {"id": 0, "name": "empty"},
            {"id": 1, "name": "deer"},
            {"id": 2, "name": "fox"},
        ],
        "annotations": [
            {"id": "an1", "image_id": "a", "category_id": 1, "bbox": [10, 20, 100, 50]},
            {"id": "an2", "image_id": "b", "category_id": 2, "bbox": [300.5, 200.25, 40, 30]},
            {"id": "an3", "image_id": "c", "category_id": 0},
        ],
    }
    doc.update(overrides)
    return doc


def md_doc(**overrides: Any) -> dict[str, Any]:
    """A small valid MD JSON document (format 1.5)."""
    doc: dict[str, Any] = {
        "info": {"format_version": "1.5", "detector": "md_v5a.0.0.pt"},
        "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
        "images": [
            {
                "file": "a.jpg",
                "detections": [{"category": "1", "conf": 0.91, "bbox": [0.1, 0.2, 0.3, 0.4]}],
            },
            {"file": "b.jpg", "detections": []},
        ],
    }
    doc.update(overrides)
    return doc


@pytest.fixture
def write_json_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a document (or raw text) to a file under ``tmp_path`` and return its path."""

    def write(doc: Any = None, *, raw: str | None = None, name: str = "data.json") -> Path:
        path = tmp_path / name
        path.write_text(raw if raw is not None else json.dumps(doc), encoding="utf-8")
        return path

    return write


@pytest.fixture
def make_cct() -> Callable[..., dict[str, Any]]:
    """Factory of small valid CCT documents (keyword arguments replace top-level keys)."""
    return cct_doc


@pytest.fixture
def make_md() -> Callable[..., dict[str, Any]]:
    """Factory of small valid MD JSON documents (keyword arguments replace top-level keys)."""
    return md_doc
