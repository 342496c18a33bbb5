"""One namespace, two installs: the editable install imports from the source folders, and a built wheel
installed into a fresh venv carries every component (and its data files) under `valuecorpus/`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMPONENTS = ["valuecorpus", "valuecorpus.schemas", "valuecorpus.pipelines", "valuecorpus.annotation",
              "valuecorpus.warehouse"]
PROBE = """
import importlib, json, sys
from importlib import resources
mods = {name: importlib.import_module(name).__file__ for name in %r}
import valuecorpus.cli
from valuecorpus.schemas.taxonomies.loader import available, load_taxonomy
counts = {name: len(load_taxonomy(name)) for name in available()}
print(json.dumps({"modules": mods, "taxonomies": counts, "variant": load_taxonomy("cvc").canonical("法制教育")}))
"""


def probe(python: str, cwd: Path) -> dict:
    out = subprocess.run([python, "-c", PROBE % COMPONENTS], capture_output=True, text=True, cwd=cwd, check=True)
    return json.loads(out.stdout)


def test_editable_install_imports_from_source_folders(tmp_path: Path) -> None:
    found = probe(sys.executable, tmp_path)["modules"]
    assert found["valuecorpus.schemas"] == str(REPO / "schemas" / "__init__.py")
    assert found["valuecorpus.pipelines"] == str(REPO / "pipelines" / "__init__.py")
    assert found["valuecorpus.warehouse"] == str(REPO / "warehouse" / "__init__.py")


def test_wheel_installs_into_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = dist.glob("valuecorpus-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"valuecorpus", wheel.name.split("-py3")[0] + ".dist-info"}, tops  # no generic top-level names
    assert any(n.startswith("valuecorpus/schemas/taxonomies/data/") and n.endswith(".json") for n in names)
    # test and benchmark tools (the fake OpenAI server) live in tests/support and never reach the wheel
    assert not [n for n in names if "fake_server" in n or n.startswith("valuecorpus/tests")], names

    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True)
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # Third-party dependencies come from the project venv; its editable hook is not activated by a plain path.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    found = probe(str(py), tmp_path)
    for name, file in found["modules"].items():
        assert file.startswith(str(site)), (name, file)
    # Data files ship in the wheel and are read through importlib.resources, not from the source tree.
    assert found["taxonomies"] == probe(sys.executable, tmp_path)["taxonomies"]
    assert found["taxonomies"]["dailydilemmas_values"] == 301 and found["variant"] == "法治教育"

    # a pipeline runs from that venv, the wheel named as the package workers install (Dataflow / Flink)
    from valuecorpus_testing.fake_server import FakeServer, FakeServerConfig

    home = tmp_path / "home"
    with FakeServer(FakeServerConfig(model="fake-model")) as server:
        run = subprocess.run([str(py), "-m", "valuecorpus", "generate", "dilemmas", "--n", "2",
                              "--run-id", "from-wheel", "--base-url", server.base_url, "--model", "fake-model",
                              "--no-progress",
                              "--executor", "beam", "--", f"--extra_package={wheel}"],
                             capture_output=True, text=True, timeout=600,
                             env={**os.environ, "VALUECORPUS_HOME": str(home)}, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    manifest = json.loads((home / "runs" / "from-wheel" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["executor"] == "beam" and manifest["plan_items"] == 2
    assert manifest["beam_args"] == [f"--extra_package={wheel}"]
