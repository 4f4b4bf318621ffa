"""The package as users get it: build the wheel and the sdist, check what each carries,
install the wheel into a fresh virtual environment with the CPU torch, and from a folder
outside the checkout import the package and train the embedded default for a few batches.

This catches package data left out of the wheel (the WikiText-2 sample, ``py.typed``) and
imports that only work from the source tree. It runs in the default test run (marker
``wheel``, so CI's wheel job can select it alone with ``-m wheel``); it needs the ``build``
package and a package index that serves the dependencies (PyPI in CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

import lightning_rnn_reg

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.wheel

SAMPLE = "lightning_rnn_reg/resources/wikitext2_sample"
IN_WHEEL = [
    "lightning_rnn_reg/__init__.py",
    "lightning_rnn_reg/py.typed",
    f"{SAMPLE}/train.txt",
    f"{SAMPLE}/valid.txt",
    f"{SAMPLE}/test.txt",
    f"{SAMPLE}/ATTRIBUTION.md",
]
NOT_IN_WHEEL = ("tests/", "benchmarks/", "examples/", "docs/", "shared/", "data/")


def _run(cmd: list[str], cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    assert proc.returncode == 0, (
        f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}"
        f"\n--- stderr\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Wheel and sdist built from a copy of the tracked tree (no build/ or egg-info
    left in the checkout)."""
    pytest.importorskip("build", reason="the wheel test needs `pip install build`")
    work = tmp_path_factory.mktemp("dist")
    src = work / "src"
    tracked = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], cwd=ROOT, capture_output=True,
                             check=False)
    if tracked.returncode == 0 and tracked.stdout:
        for name in tracked.stdout.decode().split("\0"):
            if name and (ROOT / name).is_file():
                (src / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, src / name)
    else:  # not a git checkout (e.g. an unpacked sdist): copy all but caches
        shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
            "__pycache__", "*.egg-info", "build", "dist", ".git", "lightning_logs"))
    _run([sys.executable, "-m", "build", "--outdir", str(work / "out"), str(src)], cwd=work)
    (wheel,) = (work / "out").glob("*.whl")
    (sdist,) = (work / "out").glob("*.tar.gz")
    return wheel, sdist


def test_wheel_carries_package_data_and_nothing_else(dists: tuple[Path, Path]) -> None:
    wheel, _ = dists
    version = lightning_rnn_reg.__version__
    assert wheel.name.startswith(f"lightning_rnn_reg-{version}-py3-none-any")
    names = zipfile.ZipFile(wheel).namelist()
    for name in IN_WHEEL:
        assert name in names, f"{name} missing from {wheel.name}"
    stray = [n for n in names if n.startswith(NOT_IN_WHEEL)]
    assert not stray, f"the wheel carries files it must not: {stray[:5]}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    dist_info = f"lightning_rnn_reg-{version}.dist-info"
    licenses = {n.rsplit("/", 1)[-1] for n in names if n.startswith(f"{dist_info}/licenses/")}
    assert {"LICENSE", "NOTICE"} <= licenses
    metadata = zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode()
    assert f"Version: {version}" in metadata
    assert "License-Expression: Apache-2.0" in metadata
    entry_points = zipfile.ZipFile(wheel).read(f"{dist_info}/entry_points.txt").decode()
    assert "lightning-rnn-reg = lightning_rnn_reg.cli:main" in entry_points


def test_sdist_carries_sources_tests_and_notices(dists: tuple[Path, Path]) -> None:
    _, sdist = dists
    with tarfile.open(sdist) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for name in ("pyproject.toml", "README.md", "LICENSE", "NOTICE", "CHANGELOG.md",
                 "tests/test_wheel.py", "examples/configs/quickstart.yaml",
                 "lightning_rnn_reg/py.typed", f"{SAMPLE}/train.txt"):
        assert name in names, f"{name} missing from {sdist.name}"
    assert not [n for n in names if "__pycache__" in n or n.endswith(".ckpt")]


def test_installed_wheel_imports_and_trains_outside_the_checkout(
        dists: tuple[Path, Path], tmp_path: Path) -> None:
    wheel, _ = dists
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    torch_version = __import__("torch").__version__.split("+")[0]
    # The CPU torch first (the version this suite runs on), then the wheel and its deps.
    _run([str(python), "-m", "pip", "install", "--quiet", f"torch=={torch_version}"],
         cwd=tmp_path)
    _run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], cwd=tmp_path)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    probe = _run([str(python), "-c",
                  "import importlib.metadata as m, lightning_rnn_reg as l; "
                  "print(l.__file__); print(l.__version__); "
                  "print(m.version('lightning-rnn-reg'))"], cwd=outside)
    where, version, metadata_version = probe.stdout.split()
    assert Path(where).is_relative_to(env_dir), f"imported from {where}, not the venv"
    assert version == metadata_version == lightning_rnn_reg.__version__

    config = outside / "quickstart.yaml"
    shutil.copy(ROOT / "examples" / "configs" / "quickstart.yaml", config)
    fit = _run([str(env_dir / "bin" / "lightning-rnn-reg"), "fit", "--config", str(config),
                "--trainer.max_epochs=1", "--trainer.limit_train_batches=3",
                "--trainer.limit_val_batches=2", "--trainer.logger=false",
                "--trainer.enable_checkpointing=false",
                "--trainer.enable_progress_bar=false"], cwd=outside)
    assert "max_epochs=1" in fit.stdout + fit.stderr  # Lightning's "fit stopped" line
    assert not (outside / "lightning_logs").exists()
