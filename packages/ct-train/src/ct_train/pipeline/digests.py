"""Content digests of stage inputs, outputs and config, and the pipeline's stage-state file.

A stage is up to date when the digests of its inputs and config section equal those
recorded when it last finished, and its outputs still hold what it wrote then. File
digests are SHA-256 of the content; a file whose size and modification time are
unchanged since it was last hashed reuses the recorded digest, so a rerun that skips
everything reads no big file twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from attrs import define, field

from ct_io.errors import CamtrapError
from ct_io.jsonio import read_json, write_json

STATE_NAME = "pipeline_state.json"
STATE_VERSION = 1


def config_digest(section: Any) -> str:
    """SHA-256 of a JSON-ready config section (key order does not matter)."""
    text = json.dumps(section, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@define
class FileHashCache:
    """``path → [size, mtime_ns, sha256]``: digests reused while a file is untouched."""

    entries: dict[str, list[Any]] = field(factory=dict)

    def digest(self, path: Path) -> str:
        """SHA-256 of ``path``'s content (``missing`` for an absent file)."""
        try:
            st = path.stat()
        except FileNotFoundError:
            return "missing"
        key = str(path)
        known = self.entries.get(key)
        if known and known[0] == st.st_size and known[1] == st.st_mtime_ns:
            return str(known[2])
        with path.open("rb") as fh:
            sha = hashlib.file_digest(fh, "sha256").hexdigest()
        self.entries[key] = [st.st_size, st.st_mtime_ns, sha]
        return sha

    def digests(self, paths: Iterable[Path]) -> dict[str, str]:
        """Path → SHA-256 for each of ``paths``."""
        return {str(p): self.digest(p) for p in paths}


@define
class StageRecord:
    """What a finished stage saw and produced."""

    config: str
    inputs: dict[str, str]
    outputs: dict[str, str]
    seconds: float = 0.0
    counts: dict[str, Any] = field(factory=dict)


@define
class PipelineState:
    """The stage-state file of one run folder (``pipeline_state.json``)."""

    path: Path
    stages: dict[str, StageRecord] = field(factory=dict)
    #: Stage → config digest of a run that started and has not finished (resume marker).
    started: dict[str, str] = field(factory=dict)
    hashes: FileHashCache = field(factory=FileHashCache)

    @classmethod
    def load(cls, run_dir: Path) -> PipelineState:
        """The run folder's state; a missing or unreadable file is an empty state."""
        path = run_dir / STATE_NAME
        if not path.is_file():
            return cls(path)
        try:
            data = read_json(path)
            stages = {k: StageRecord(**v) for k, v in data.get("stages", {}).items()}
            hashes = FileHashCache(dict(data.get("hashes", {})))
            started = {str(k): str(v) for k, v in data.get("started", {}).items()}
        except (CamtrapError, TypeError, AttributeError, ValueError):
            # an unreadable state only costs a rerun of every stage
            return cls(path)
        return cls(path, stages, started, hashes)

    def save(self) -> None:
        """Write the file atomically (a crash leaves the previous state)."""
        live = {str(p) for r in self.stages.values() for p in (*r.inputs, *r.outputs)}
        write_json(
            self.path,
            {
                "version": STATE_VERSION,
                "stages": {
                    k: {
                        "config": r.config,
                        "inputs": r.inputs,
                        "outputs": r.outputs,
                        "seconds": round(r.seconds, 3),
                        "counts": r.counts,
                    }
                    for k, r in self.stages.items()
                },
                "started": self.started,
                "hashes": {k: v for k, v in self.hashes.entries.items() if k in live},
            },
            indent=1,
        )

    def is_current(
        self, stage: str, config: str, inputs: Mapping[str, str], outputs: Iterable[Path]
    ) -> bool:
        """Whether ``stage`` finished with these inputs and config and its outputs are intact."""
        rec = self.stages.get(stage)
        if rec is None or rec.config != config or rec.inputs != dict(inputs):
            return False
        wanted = [str(p) for p in outputs]
        if sorted(wanted) != sorted(rec.outputs):
            return False
        return all(self.hashes.digest(Path(p)) == rec.outputs[p] for p in wanted)
