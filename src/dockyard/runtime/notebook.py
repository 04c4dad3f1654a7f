"""Run a notebook as a training command: ``python -m dockyard_runtime.notebook NOTEBOOK``.

The train image of a project with ``train.notebook`` carries nbclient and ipykernel (in their own
prefix, see render/notebook.py); this module is the small driver around them:

* parameters come from ``DOCKYARD_PARAMS`` (what ``dockyard train --param`` sets) and are injected
  the way papermill does it: a new cell tagged ``injected-parameters`` right after the cell
  tagged ``parameters`` (or first, when there is none), with values typed like papermill's
  ``-p`` (True/False/None, int, float, else a string);
* every cell's text output is printed as it finishes, so the run's log is the notebook's output;
* the executed notebook is written to ``$DOCKYARD_OUTPUTS/<name>.ipynb`` (also after a failure);
* a failing cell ends the run with exit status 1, and the last lines of the log name that cell,
  show its source and the error, so the train error's log tail points at it.

Stdlib at import time; nbformat/nbclient are imported only when a notebook runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

INJECTED_TAG = "injected-parameters"
PARAMETERS_TAG = "parameters"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
SOURCE_LINES = 12  # of the failing cell, shown at the end of the log


def typed(value: str) -> Any:
    """A --param value as papermill's ``-p`` reads it."""
    if value in ("True", "true"):
        return True
    if value in ("False", "false"):
        return False
    if value == "None":
        return None
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value


def parameters_source(params: dict[str, str]) -> str:
    return "# Parameters\n" + "".join(f"{name} = {typed(value)!r}\n" for name, value in params.items())


def inject_parameters(nb: dict[str, Any], params: dict[str, str]) -> int | None:
    """Insert the parameters cell into ``nb`` (nbformat 4 as dicts); return its index."""
    cells = [c for c in nb["cells"] if INJECTED_TAG not in _tags(c)]
    nb["cells"] = cells
    if not params:
        return None
    at = next((i + 1 for i, c in enumerate(cells) if PARAMETERS_TAG in _tags(c)), 0)
    cell: dict[str, Any] = {"cell_type": "code", "execution_count": None, "metadata": {"tags": [INJECTED_TAG]},
            "outputs": [], "source": parameters_source(params)}
    if nb.get("nbformat", 4) >= 4 and nb.get("nbformat_minor", 0) >= 5:
        cell["id"] = "dockyard-injected-parameters"
    cells.insert(at, cell)
    return at


def _tags(cell: dict[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _text(output: dict[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return "".join(output.get("text", ""))
    if kind in ("execute_result", "display_data"):
        return "".join(output.get("data", {}).get("text/plain", "")) + "\n"
    if kind == "error":
        return _ANSI.sub("", "\n".join(output.get("traceback", []))) + "\n"
    return ""


def failing_cell(nb: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]] | None:
    """(index, cell, error output) of the first cell with an error output."""
    for index, cell in enumerate(nb["cells"]):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if output.get("output_type") == "error":
                return index, cell, output
    return None


def describe_failure(name: str, nb: dict[str, Any]) -> str:
    found = failing_cell(nb)
    if found is None:
        return f"notebook {name} failed (no cell reported an error)"
    index, cell, error = found
    source = "".join(cell.get("source", "")).splitlines() or ["(empty)"]
    failing = _failing_line(error)
    first = max(0, failing - SOURCE_LINES + 2) if failing and failing <= len(source) else 0
    last = min(len(source), first + SOURCE_LINES)
    where = f", line {failing}" if failing else ""
    lines = [f"notebook {name} failed in cell {index + 1} of {len(nb['cells'])}{where}:"]
    lines += [f"  | ... ({first} lines above)"] if first else []
    lines += [f"{'>' if n + 1 == failing else ' '} | {source[n]}" for n in range(first, last)]
    lines += [f"  | ... ({len(source) - last} more lines)"] if last < len(source) else []
    lines.append(f"{error.get('ename', 'Error')}: {error.get('evalue', '')}")
    return "\n".join(lines)


def _failing_line(error: dict[str, Any]) -> int | None:
    """The cell's line that raised, from IPython's traceback ("Cell In[3], line 12")."""
    text = _ANSI.sub("", "\n".join(error.get("traceback", [])))
    found = re.search(r"Cell In\[\d*\], line (\d+)", text)
    return int(found.group(1)) if found else None


def run(path: Path, output: Path, params: dict[str, str], *, timeout: int | None = None) -> int:
    # Only the train image of a notebook project has them (render/notebook.py).
    import nbformat  # type: ignore[import-untyped,import-not-found,unused-ignore]
    import nbclient  # type: ignore[import-untyped,import-not-found,unused-ignore]
    import nbclient.exceptions  # type: ignore[import-untyped,import-not-found,unused-ignore]

    nb = nbformat.read(str(path), as_version=4)
    inject_parameters(nb, params)
    nb = nbformat.from_dict(nb)  # the injected cell is a plain dict: make it a NotebookNode too

    def printed(cell: Any, cell_index: int, execute_reply: Any) -> None:
        for out in cell.get("outputs", []):
            text = _text(out)
            if text:
                sys.stdout.write(text)
        sys.stdout.flush()

    client = nbclient.NotebookClient(nb, kernel_name="python3", timeout=timeout, allow_errors=False,
                            resources={"metadata": {"path": str(path.parent.resolve())}},
                            on_cell_executed=printed)
    code = 0
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError:
        code = 1
    finally:
        output.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(output))
    if code:
        sys.stdout.flush()
        print(describe_failure(path.name, nb), file=sys.stderr, flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dockyard_runtime.notebook",
                                     description="Execute a notebook as a training run.")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--output", type=Path, default=None,
                        help="where the executed notebook goes (default: $DOCKYARD_OUTPUTS/NAME)")
    parser.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: none)")
    args = parser.parse_args(argv)
    if not args.notebook.is_file():
        print(f"error: notebook {args.notebook} does not exist", file=sys.stderr)
        return 2
    params = json.loads(os.environ.get("DOCKYARD_PARAMS") or "{}")
    outputs = Path(os.environ.get("DOCKYARD_OUTPUTS", "outputs"))
    output = args.output or outputs / args.notebook.name
    return run(args.notebook, output, {str(k): str(v) for k, v in params.items()}, timeout=args.timeout)


if __name__ == "__main__":
    sys.exit(main())
