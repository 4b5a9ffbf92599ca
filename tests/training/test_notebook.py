"""notebooks/explore.ipynb runs top to bottom (a real Jupyter kernel from this interpreter) against
the trained sample home, and the repository keeps it without outputs."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explore.ipynb"


def _text(outputs: list) -> str:
    parts = []
    for out in outputs:
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif out.get("output_type") in ("execute_result", "display_data"):
            parts.append(out.get("data", {}).get("text/plain", ""))
        elif out.get("output_type") == "error":
            parts.append("\n".join(out.get("traceback", [])))
    return "\n".join(parts)


def test_notebook_is_stored_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)


def test_notebook_runs_against_the_trained_home(trained: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    # The kernel is this interpreter: ipykernel's native "python3" spec runs sys.executable.
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert spec.argv[0] in ("python", "python3") or Path(spec.argv[0]).resolve().parent == Path(
        __import__("sys").executable).resolve().parent
    monkeypatch.setenv("TRIALCAST_HOME", str(trained["home"]))
    monkeypatch.setenv("TRIALCAST_SAMPLE_DIR", str(trained["sample"]))
    if trained["settings"].cache_file:
        monkeypatch.setenv("TRIALCAST_CACHE_FILE", str(trained["settings"].cache_file))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("PYTHONWARNINGS", "default")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=900, allow_errors=False,
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    client.execute()

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    text = _text(outputs)
    version = str(trained["summary"]["version"])
    assert f"champion v{version}" in text
    assert f"trialcast home: {trained['home']}" in text
    assert "3000 SKUs launched" in text
    # The error analysis read the run's logged holdout forecasts (out of time), not a re-scoring.
    assert "holdout forecasts logged by the training run" in text
    n_holdout = round(0.2 * 3000)
    assert any(f"{n} holdout launches" in text for n in range(n_holdout - 30, n_holdout + 30))
    wape = trained["summary"]["holdout"]["wape"]
    assert f"WAPE {wape:.1%}" in text
    figures = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(figures) >= 6  # sales, category, season, curve, holdout, error by category
    # Chinese category names are drawn with a font that has them (or escaped): no missing glyphs.
    assert "missing from font" not in text, text[:2000]
    assert json.dumps(nb.cells[0].source)  # the notebook still serialises after execution
