"""The folder import rules of the README, checked on the source, and a registered model that loads
and forecasts in processes that never import the training code.

Rules (what each product folder must never import, at any depth of a module):
- ``features/``: third-party only: never training, serving, trialcast, benchmarks or bentoml; and
  mlflow never at module top level. The two exceptions import mlflow lazily inside functions:
  ``features/model.py`` in its registry functions (fetching a model version) and
  ``features/ledger/monitor.py`` (publishing the live error when actuals arrive), so importing
  either stays light and the feature path itself knows nothing of MLflow.
- ``training/``: features (and third-party): never serving, trialcast or benchmarks.
- ``serving/``: features (and third-party): never training, trialcast or benchmarks.
- ``trialcast/``: anything of the product, never benchmarks.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "features": {"training", "serving", "trialcast", "benchmarks", "bentoml"},
    "training": {"serving", "trialcast", "benchmarks"},
    "serving": {"training", "trialcast", "benchmarks"},
    "trialcast": {"benchmarks"},
}
NOT_AT_TOP_LEVEL = {"features": {"mlflow"}}
LAZY_MLFLOW_ALLOWED = {"features/model.py", "features/ledger/monitor.py"}  # see the module docstring


def _imports(path: Path, root: Path = ROOT) -> list[tuple[str, bool, int]]:
    """(imported module, at module top level?, line) for every import in a source file."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found: list[tuple[str, bool, int]] = []

    def visit(node: ast.AST, top: bool) -> None:
        for child in ast.iter_child_nodes(node):
            nested = top and not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend((alias.name, top, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:  # relative: resolve against this module's package
                    parent = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*parent, base] if base else parent)
                found.append((base, top, child.lineno))
            visit(child, nested)

    visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), True)
    return found


def _violations(root: Path = ROOT) -> list[str]:
    out = []
    for folder, forbidden in FORBIDDEN.items():
        for path in sorted((root / folder).rglob("*.py")):
            name = path.relative_to(root).as_posix()
            for module, top, line in _imports(path, root):
                first = module.split(".")[0]
                if first in forbidden:
                    out.append(f"{name}:{line} imports {module} ({folder}/ must never import {first})")
                elif first in NOT_AT_TOP_LEVEL.get(folder, ()) and (top or name not in LAZY_MLFLOW_ALLOWED):
                    where = "at module top level" if top else "outside the two lazy places (features/model.py, features/ledger/monitor.py)"
                    out.append(f"{name}:{line} imports {module} {where}")
    return out


def test_the_scan_sees_every_product_module() -> None:
    """Guard against a scan that silently checks nothing (wrong root, renamed folders)."""
    counts = {folder: len(list((ROOT / folder).rglob("*.py"))) for folder in FORBIDDEN}
    assert all(n > 0 for n in counts.values()), counts
    assert ("training.forecaster", True) in {(m, top) for m, top, _ in _imports(ROOT / "training" / "train.py")}


def test_folders_import_only_what_the_readme_allows() -> None:
    assert _violations() == []


def test_serving_never_imports_training() -> None:
    """The issue's own test, on its own: no module under serving/ imports training, even lazily."""
    offenders = [f"{p.relative_to(ROOT)}:{line} {m}" for p in sorted((ROOT / "serving").rglob("*.py"))
                 for m, _, line in _imports(p) if m.split(".")[0] == "training"]
    assert offenders == []


def test_the_scan_catches_a_forbidden_import(tmp_path: Path) -> None:
    """A serving module that imports training lazily, and a features module with mlflow at the top."""
    fake = tmp_path / "repo"
    (fake / "serving").mkdir(parents=True)
    (fake / "serving" / "bad.py").write_text("def f():\n    from training.jobs import load_model\n")
    (fake / "features").mkdir()
    (fake / "features" / "bad.py").write_text("import mlflow\n\ndef g():\n    import mlflow.artifacts\n")
    found = _violations(fake)
    assert any(v.startswith("serving/bad.py:2 imports training.jobs") for v in found), found
    assert any(v.startswith("features/bad.py:1 imports mlflow at module top level") for v in found), found
    assert any(v.startswith("features/bad.py:4 imports mlflow.artifacts outside") for v in found), found


# ---------------------------------------------------------------- in fresh processes
def _fresh_python(code: str, trained: dict, tmp_path: Path) -> dict:
    """Run ``code`` in a new interpreter on the trained home (outside the source tree); it prints
    one JSON line last."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"))}
    env["TRIALCAST_HOME"] = str(trained["home"])
    if trained["settings"].cache_file:
        env["TRIALCAST_CACHE_FILE"] = str(trained["settings"].cache_file)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


LOADED_TRAINING = "sorted(m for m in sys.modules if m == 'training' or m.startswith('training.'))"


def test_the_champion_serves_without_the_training_code(trained: dict, tmp_path: Path) -> None:
    sample = trained["sample"]
    code = f"""
import json, sys
from pathlib import Path
import pandas as pd
from features.config import get_settings
from serving.champion import load_champion

predictor, message = load_champion(get_settings())
assert predictor is not None, message
row = pd.read_csv({str(sample / "candidates.csv")!r}, dtype=str).iloc[0].to_dict()
picture = (Path({str(sample)!r}) / row.pop("image")).read_bytes()
answer = predictor.predict([row], [picture])[0]
assert answer["ok"], answer
print(json.dumps({{"training": {LOADED_TRAINING}, "p50": answer["forecast"]["p50"], "message": message}}))
"""
    out = _fresh_python(code, trained, tmp_path)
    assert out["training"] == []
    assert out["p50"] > 0 and out["message"].startswith("champion version")


def test_the_registered_pyfunc_predicts_without_the_training_code(trained: dict, tmp_path: Path) -> None:
    """``mlflow.pyfunc.load_model('models:/trialcast@champion')`` as any MLflow client would use it;
    the ``features`` package it runs is the copy the model carries (code_paths)."""
    sample, uri = trained["sample"], trained["settings"].mlflow_uri
    code = f"""
import json, sys
from pathlib import Path
import mlflow, pandas as pd

mlflow.set_tracking_uri({uri!r})
model = mlflow.pyfunc.load_model("models:/trialcast@champion")
raw = pd.read_csv({str(sample / "candidates.csv")!r}, dtype=str, keep_default_na=False).head(2)
request = raw.assign(image=[(Path({str(sample)!r}) / p).read_bytes() for p in raw["image"]],
                     cost_price=raw["cost_price"].astype(float), list_price=raw["list_price"].astype(float))
served = model.predict(request)
import features
print(json.dumps({{"training": {LOADED_TRAINING}, "p50": served["p50"].tolist(), "features": features.__file__}}))
"""
    out = _fresh_python(code, trained, tmp_path)
    assert out["training"] == []
    assert len(out["p50"]) == 2 and min(out["p50"]) > 0
    assert Path(out["features"]).parent.parent.name == "code", out["features"]
