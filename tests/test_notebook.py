"""docs/tour.ipynb runs end to end (quick crops), and is stored without outputs."""
import os
import pathlib
import sys

import nbclient
import nbformat
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOUR = ROOT / "docs" / "tour.ipynb"

def test_tour_is_stored_without_outputs():
    notebook = nbformat.read(TOUR, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code, "the tour has no code cells"
    for cell in code:
        assert cell.outputs == [] and cell.execution_count is None, \
            f"a code cell of {TOUR.name} is stored with outputs: clear them before committing"


def test_tour_runs(tmp_path):
    notebook = nbformat.read(TOUR, as_version=4)
    env = dict(os.environ, SOL5_TOUR_QUICK="1", SOL5_OUTPUTS=str(tmp_path / "outputs"))
    env.pop("MPLBACKEND", None)  # the kernel's inline backend turns figures into outputs
    # the offline training data is built once into the cache; a fresh one when none is set
    env.setdefault("SOL5_CACHE", str(tmp_path / "cache"))
    client = nbclient.NotebookClient(
        notebook, kernel_name="python3", timeout=900, allow_errors=False,
        resources={"metadata": {"path": str(ROOT / "docs")}})  # as Jupyter opens it: in docs/
    client.execute(env=env)  # kernel python3: this interpreter (see the test below)
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.get("output_type") == "error"]
    text = "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")
    assert "quick crops: True" in text
    assert "float64" in text
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 5, "the tour shows its before/after figures and the depth plots"
    assert not (tmp_path / "outputs").exists() or not any((tmp_path / "outputs").iterdir())


def test_python3_kernel_is_this_interpreter():
    """jupyter_client starts a kernel spec whose command is a bare ``python`` with sys.executable."""
    from jupyter_client import kernelspec
    spec = kernelspec.KernelSpecManager().get_kernel_spec("python3")
    executable = spec.argv[0]
    bare = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    assert executable in bare or \
        pathlib.Path(executable).resolve() == pathlib.Path(sys.executable).resolve(), \
        f"the python3 kernel would run {executable}, not {sys.executable}"
