"""What `dockyard run` does with the files a command wrote in its copy of /app (issue 11)."""

from __future__ import annotations

from pathlib import Path

from dockyard.project import RUNS_DIR, copy_run_files


def made(root: Path, files: dict[str, str]) -> list[tuple[str, Path]]:
    out = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        out.append((rel, path))
    return out


def test_files_go_to_the_run_folder_with_their_paths(tmp_path: Path) -> None:
    changed = made(tmp_path / "work", {"model-0.json": "{}", "demo/out/report.txt": "rmse"})
    default = tmp_path / "proj" / RUNS_DIR / "run-1"
    saved = copy_run_files(changed, None, default)
    assert saved.destination == default.resolve()
    assert saved.files == ("model-0.json", "demo/out/report.txt") and saved.elsewhere == ()
    assert (default / "demo" / "out" / "report.txt").read_text() == "rmse"


def test_output_never_overwrites_a_different_file_and_accepts_an_identical_one(tmp_path: Path) -> None:
    changed = made(tmp_path / "work", {"model.txt": "new", "same.txt": "x", "fresh.txt": "f"})
    out = tmp_path / "out"
    made(out, {"model.txt": "the user's", "same.txt": "x"})
    default = tmp_path / "runs" / "run-2"
    saved = copy_run_files(changed, out, default)
    assert (out / "model.txt").read_text() == "the user's"
    assert (default / "model.txt").read_text() == "new"
    assert saved.elsewhere == ("model.txt",) and saved.fallback == default
    assert set(saved.files) == {"same.txt", "fresh.txt"} and (out / "fresh.txt").read_text() == "f"
