"""Every notebook in notebooks/ runs top to bottom without an error, and so does the demo."""
import os
import pathlib
import re
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))

# First cell run in every notebook: proves the kernel is this interpreter's environment (so it
# imports the signcore under test, not another installation).
PROBE = "import sys as _sys; print('KERNEL_PREFIX=' + _sys.prefix)"


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb file"
    assert any(p.name == "00_quickstart.ipynb" for p in NOTEBOOKS)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    nb.cells.insert(0, nbformat.v4.new_code_cell(PROBE))
    env_path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    client = NotebookClient(
        nb,
        timeout=600,  # per cell
        kernel_name="python3",  # ipykernel of this environment ("python" -> sys.executable)
        resources={"metadata": {"path": str(path.parent)}},  # run in notebooks/, like Jupyter
        allow_errors=False,
    )
    old_path = os.environ.get("PATH", "")
    os.environ["PATH"] = env_path
    try:
        client.execute()
    except CellExecutionError as e:
        pytest.fail(f"{path.name} failed:\n{e}", pytrace=False)
    finally:
        os.environ["PATH"] = old_path

    probe_out = "".join(o.get("text", "") for o in nb.cells[0].outputs)
    assert f"KERNEL_PREFIX={sys.prefix}" in probe_out, (
        f"the notebook kernel ran in another environment: {probe_out!r}, expected {sys.prefix}")
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.get("execution_count") is not None, f"cell {i} of {path.name} did not run"
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"cell {i} of {path.name}: {out}"
    if path.name == "00_quickstart.ipynb":
        # The sample digits, the training curves and the confusion matrix are drawn inline.
        images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if "image/png" in o.get("data", {})]
        assert len(images) == 3


@pytest.mark.slow
def test_demo_runs(tmp, capsys, monkeypatch):
    import numpy as np

    from signcore import demo

    monkeypatch.chdir(tmp)
    assert demo.main(["--epochs", "3", "--batch-size", "64", "--seed", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "== signcore configuration" in out
    assert re.search(r"threads\s+1\b", out)
    acc = float(re.search(r"test accuracy (\d\.\d+)", out).group(1))
    assert 0.5 < acc <= 1.0  # three epochs already learn most digits (chance is 0.1)
    # The confusion matrix table: a header with the ten classes, then one row per true class whose
    # counts add up to that class's images in the test set.
    expected_rows = np.bincount(demo.load_digits_data().y_test, minlength=10).tolist()
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("true \\ pred"))
    assert lines[head].split()[3:] == [str(c) for c in range(10)]
    rows = [list(map(int, line.split()[1:])) for line in lines[head + 1:head + 11]]
    assert [line.split()[0] for line in lines[head + 1:head + 11]] == [str(c) for c in range(10)]
    assert [sum(r) for r in rows] == expected_rows
    correct = sum(rows[i][i] for i in range(10))
    assert f"({correct}/360 correct)" in out
    assert (tmp / "results" / "demo_history.png").stat().st_size > 1000


def test_format_confusion_matrix():
    from signcore.demo import format_confusion_matrix

    text = format_confusion_matrix([[5, 0], [12, 3]], ["cat", "dog"])
    assert text.splitlines() == [
        "true \\ pred cat dog",
        "        cat   5   0",
        "        dog  12   3",
    ]


def test_digits_split_is_fixed_and_stratified(digits):
    import numpy as np

    assert digits.x_train.shape == (1437, 64) and digits.x_test.shape == (360, 64)
    assert digits.x_train.dtype == np.float32
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() <= 1.0
    # Stratified: every class keeps its share (20% of its images, to within one image).
    per_class = np.bincount(np.concatenate([digits.y_train, digits.y_test]), minlength=10)
    assert np.all(np.abs(np.bincount(digits.y_test, minlength=10) - 0.2 * per_class) <= 1)
    from signcore.demo import load_digits_data

    again = load_digits_data()
    np.testing.assert_array_equal(again.x_test, digits.x_test)
    np.testing.assert_array_equal(again.y_train, digits.y_train)


@pytest.mark.torch
def test_mlp_benchmark_runs(tmp):
    """The benchmark script works end to end (tiny sizes; its timings are not checked)."""
    import json
    import subprocess

    out_json = tmp / "bench.json"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "bench_mlp.py"), "--quick", "--threads", "1",
         "--json", str(out_json)],
        capture_output=True, text=True, timeout=300, cwd=tmp)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "signcore/PyTorch" in result.stdout
    report = json.loads(out_json.read_text())
    assert report["threads"] == 1
    assert [r["benchmark"].split()[0] for r in report["rows"]] == ["train", "fit,", "predict,"]
    for row in report["rows"]:
        for key in ("signcore samples/s", "PyTorch samples/s", "signcore/PyTorch"):
            assert float(row[key].replace(",", "")) > 0


@pytest.mark.torch
@pytest.mark.parametrize("script", sorted(p.name for p in (REPO_ROOT / "benchmarks").glob("bench_*.py")
                                         if p.name != "bench_mlp.py"))
def test_every_benchmark_runs_quick(script, tmp):
    """Each benchmark script runs end to end at its --quick sizes and prints its table (the
    numbers mean nothing at these sizes and are not checked)."""
    import subprocess

    result = subprocess.run([sys.executable, str(REPO_ROOT / "benchmarks" / script), "--quick", "--threads", "1"],
                            capture_output=True, text=True, timeout=600, cwd=tmp)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "signcore" in result.stdout
