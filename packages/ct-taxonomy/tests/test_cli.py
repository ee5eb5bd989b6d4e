"""The ``ct-taxonomy`` console script: exit codes, messages, files written; and the
commands of docs/taxonomy.md, run exactly as written."""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from ct_io.jsonio import read_json
from ct_io.tables import read_label_index, read_queried_images
from ct_taxonomy.cli import main

REPO = Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "docs" / "examples" / "taxonomy"
DOC = REPO / "docs" / "taxonomy.md"


def run(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """Run the console script in-process; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["ct-taxonomy", *args])
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("CAMTRAP_DEBUG", raising=False)
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A scratch copy of docs/examples/taxonomy, as the working directory."""
    work = tmp_path / "example"
    shutil.copytree(EXAMPLES, work)
    monkeypatch.chdir(work)
    return work


def doc_commands() -> list[list[str]]:
    """Every ``ct-taxonomy`` command in the bash blocks of docs/taxonomy.md."""
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    commands = []
    for block in blocks:
        for cmd in block.replace("\\\n", " ").splitlines():
            if cmd.strip().startswith("ct-taxonomy "):
                commands.append(shlex.split(cmd)[1:])
    return commands


def test_the_docs_commands_run_as_written(
    example: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    commands = doc_commands()
    assert [c[0] for c in commands] == [
        "spec-to-json",
        "validate",
        "taxa",
        "select",
        "map",
        "aggregate",
        "aggregate",
    ]
    for args in commands:
        code, out, err = run(args, capsys, monkeypatch)
        assert code == 0, (args, out, err)
    # what the page says happened, happened
    queried = read_queried_images(example / "run" / "queried_images.json")
    per_label = pd.Series([im.label[0] for im in queried.values()]).value_counts().to_dict()
    assert per_label == {"canid": 7, "deer": 5, "bird": 2, "bobcat": 1}
    assert sum(im.dataset == "beta" and im.label == ["deer"] for im in queried.values()) == 4
    assert "alpha/a/bad1.jpg" not in queried and "alpha/a/mixed1.jpg" not in queried
    assert queried["alpha/a/coyote1.jpg"].bbox[0].bbox == [0.1, 0.1, 0.25, 0.25]
    report = read_json(example / "run" / "selection_report.json")
    assert report["conflicts"] == [
        {
            "image": "alpha/a/mixed1.jpg",
            "kind": "multilabel",
            "labels": ["bobcat", "canid"],
            "classes": ["bobcat", "coyote"],
        }
    ]
    assert report["datasets"]["alpha"]["mislabeled_corrected"] == 1
    assert read_json(example / "target_to_classifier_labels.json") == {
        "dog_family": ["coyote", "gray_fox", "red_fox"], "cat_family": ["bobcat"],
        "deer_family": ["elk", "mule_deer", "white_tailed_deer"], "other": ["crow", "human", "turkey"],
    }  # fmt: skip
    remapped = pd.read_csv(example / "classifier_output_remapped.csv.gz")
    assert "cam1/img0002.jpg___crop00_mdv5a.jpg,0.91,0.05,0,0.04" in remapped.to_csv(index=False)
    assert read_label_index(example / "label_index_remapped.json") == [
        "dog_family",
        "cat_family",
        "deer_family",
        "other",
    ]
    rollup = pd.read_csv(example / "classifier_output_rollup.csv")
    assert rollup[["rollup_label", "rollup_level"]].values.tolist()[:4] == [
        ["coyote", "label"],
        ["canidae", "family"],
        ["odocoileus", "genus"],
        ["aves", "class"],
    ]


def test_docs_typo_message_is_real(
    example: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = example / "label_spec.csv"
    spec.write_text(spec.read_text().replace("canid,family,canidae", "canid,family,canidea"))
    code, out, _ = run(
        ["validate", "label_spec.csv", "--taxonomy", "taxonomy.csv"], capsys, monkeypatch
    )
    assert code == 1
    assert "line 3 ($['canid'].taxa[0])" in out
    assert "taxon 'family canidea' is not in the taxonomy — did you mean 'canidae'?" in " ".join(
        out.split()
    )


def test_validate_against_datasets_and_overlaps(
    example: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (example / "overlap.csv").write_text("mammal,class,mammalia\ncanid,family,canidae\n")
    code, out, _ = run(
        ["validate", "overlap.csv", "--taxonomy", "taxonomy.csv"], capsys, monkeypatch
    )
    assert code == 1 and "claim the same" in out
    code, out, _ = run(
        ["validate", "overlap.csv", "--taxonomy", "taxonomy.csv", "--allow-multilabel"],
        capsys,
        monkeypatch,
    )
    assert code == 0 and "1 warning(s)" in out
    (example / "labels.csv").write_text("x,row,alpha|coyotee\n")
    code, out, _ = run(
        ["validate", "labels.csv", "--dataset", "alpha_cct.json"], capsys, monkeypatch
    )
    assert code == 1 and "did you mean 'coyote'" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["select", "label_spec.csv", "--output-dir", "run"],
            "error: select needs at least one --dataset",
        ),
        (
            ["select", "label_spec.csv", "-o", "run", "--dataset", "alpha=missing.json"],
            "error: missing.json: file not found",
        ),
        (
            ["select", "label_spec.csv", "-o", "run", "--dataset", "=alpha_cct.json"],
            "expected NAME=PATH",
        ),
        (
            ["select", "label_spec.csv", "-o", "run", "--dataset", "alpha=alpha_cct.json"],
            "error: label_spec.csv: line 3 ($['canid'].taxa[0]): selects taxon",
        ),
        (["validate", "nope.json"], "error: nope.json: file not found"),
        (
            ["validate", "taxonomy.csv"],
            "error: taxonomy.csv: line 1: expected 3 fields (output_label,type,content), got 6",
        ),
        (
            [
                "map",
                "target_spec.csv",
                "classifier_label_spec.json",
                "-t",
                "taxonomy.csv",
                "-o",
                "m.json",
                "-i",
                "label_spec.csv",
            ],
            "error: label_spec.csv: malformed JSON",
        ),
        (
            ["aggregate", "classifier_output.csv", "--output-csv", "o.csv"],
            "error: give --target-mapping",
        ),
        (
            [
                "aggregate",
                "classifier_output.csv",
                "--output-csv",
                "o.csv",
                "--label-index",
                "classifier_label_index.json",
                "--rollup",
                "0.8",
            ],
            "--rollup needs --taxonomy",
        ),
        (
            ["taxa", "taxonomy.csv", "canidea"],
            "error: no taxon 'canidea' in taxonomy.csv — did you mean 'canidae' or",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    example: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    code, _, err = run(args, capsys, monkeypatch)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_select_conflict_table_and_multilabel(
    example: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    args = [
        "select",
        "label_spec.csv",
        "-t",
        "taxonomy.csv",
        "-d",
        "alpha=alpha_cct.json",
        "-d",
        "beta=beta_cct.json",
        "-o",
        "out",
        "--allow-multilabel",
    ]
    code, out, _ = run(args, capsys, monkeypatch)
    assert code == 0
    assert "1 multilabel" in out
    assert read_queried_images(example / "out" / "queried_images.json")[
        "alpha/a/mixed1.jpg"
    ].label == ["bobcat", "canid"]


def test_aggregate_rejects_an_incomplete_mapping(
    example: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (example / "m.json").write_text('{"dogs": ["coyote"]}')
    code, _, err = run(
        [
            "aggregate",
            "classifier_output.csv",
            "-m",
            "m.json",
            "--label-index",
            "classifier_label_index.json",
            "--output-csv",
            "o.csv",
        ],
        capsys,
        monkeypatch,
    )
    assert code == 2 and "are in no target" in err
    assert not (example / "o.csv").exists()


def test_help_for_every_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for command in ("spec-to-json", "validate", "select", "map", "aggregate", "taxa"):
        code, out, _ = run([command, "--help"], capsys, monkeypatch)
        assert code == 0 and "Usage" in out
