"""The shape of the package (DESIGN.md): small experiment modules, no models under experiments/, no
test data under src/."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "emergelab"
MAX_EXPERIMENT_LINES = 300
MAX_FILE_LINES = 450
MODEL_FAMILIES = {"models/rbf.py"}  # one model family per file may be longer
FIXTURE_NAMES = ("example_report_data", "fake_", "dummy_")


def _py_files():
    return sorted(p for p in SRC.rglob("*.py"))


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_experiment_modules_are_small():
    big = {p.name: _lines(p) for p in (SRC / "experiments").glob("*.py") if _lines(p) > MAX_EXPERIMENT_LINES}
    assert not big, f"experiment modules over {MAX_EXPERIMENT_LINES} lines: {big}"


def test_no_file_over_the_limit_unless_one_model_family():
    big = {str(p.relative_to(SRC)): _lines(p) for p in _py_files()
           if _lines(p) > MAX_FILE_LINES and str(p.relative_to(SRC)) not in MODEL_FAMILIES}
    assert not big, f"files over {MAX_FILE_LINES} lines: {big}"


def test_no_module_classes_under_experiments():
    found = []
    for path in (SRC / "experiments").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(b) for b in node.bases}
                if bases & {"nn.Module", "torch.nn.Module", "HookedModule", "Module"}:
                    found.append(f"{path.name}:{node.name}")
    assert not found, f"models defined under experiments/ (move them to models/): {found}"


def test_no_test_data_under_src():
    offenders = []
    for path in _py_files():
        tree = ast.parse(path.read_text())
        offenders += [f"{path.relative_to(SRC)}:{n.name}" for n in ast.walk(tree)
                      if isinstance(n, ast.FunctionDef) and n.name.startswith(FIXTURE_NAMES)]
    assert not offenders, f"test fixtures under src/ (move them to tests/fixtures/): {offenders}"
