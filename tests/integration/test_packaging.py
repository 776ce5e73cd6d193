"""``pip install .`` (not editable) into a fresh venv, then ``pushsvc --demo`` from outside the checkout.

The GUI and the default config must come from the installed package, not from
a checkout beside it. The test stays offline and quick: the fresh venv gets no
pip of its own (this interpreter's pip installs into it with ``--python``),
the build uses this environment's setuptools (``--no-build-isolation``, the
test extra pins it), and the runtime dependencies come from this
environment's site-packages through a ``.pth`` line instead of a download
(``--no-deps --no-index``). Nothing in the checkout is written: the build
runs in a copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pushsvc.contracts import ASYNCAPI, OPENAPI, load_document

from ..processes import REPO, TOKEN_LINE, ServerProcess, clean_env, free_port, http_get

# What a build reads (pushsvc/_static and pushsvc/_config.yaml are symlinks into
# static/ and config.yaml, kept as links in the copy).
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "config.yaml", "static", "pushsvc")
SHIPPED_STATIC = ("app.js", "style.css", "js/dashboard.js", "js/merge-patch.js")


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)
    assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with pushsvc installed from a copy of the checkout; returns the venv."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, source / name)

    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    (site_packages,) = venv.glob("lib/python3*/site-packages")
    ours = [path for path in sys.path if path.endswith("site-packages")]
    (site_packages / "_pushsvc_test_dependencies.pth").write_text("\n".join(ours) + "\n")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(venv / "bin" / "python"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            str(source),
        ]
    )
    return venv


def test_wheel_install_ships_the_gui_and_the_default_config(installed, tmp_path):
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    env = clean_env(tmp_path / "home", PUSHSVC_SERVER_SHUTDOWN_TIMEOUT="1")
    probe = run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import pushsvc, pushsvc.app, pushsvc.cli; print(pushsvc.__file__); "
            "print(pushsvc.app.STATIC_DIR); print(pushsvc.cli.DEFAULT_CONFIG)",
        ],
        cwd=elsewhere,
        env=env,
    )
    package, static_dir, default_config = (Path(line) for line in probe.stdout.splitlines())
    for path in (package, static_dir, default_config):
        assert path.is_relative_to(installed), path
    assert not static_dir.is_symlink() and not default_config.is_symlink()
    assert default_config.read_bytes() == (REPO / "config.yaml").read_bytes()
    assert (installed / "bin" / "pushsvc").is_file()
    license_files = list(installed.glob("lib/python3*/site-packages/pushsvc-*.dist-info/licenses/LICENSE"))
    assert [path.read_bytes() for path in license_files] == [(REPO / "LICENSE").read_bytes()]

    port = free_port()
    command = [str(installed / "bin" / "pushsvc"), "--demo", "--no-simulator", "--port", str(port)]
    with ServerProcess(command, env=env, cwd=elsewhere, ready=TOKEN_LINE):
        token = run([str(installed / "bin" / "pushsvc"), "token"], cwd=elsewhere, env=env).stdout.strip()
        base = f"http://127.0.0.1:{port}"

        status, body = http_get(f"{base}/")
        assert status == 200 and body == (REPO / "static" / "index.html").read_bytes()
        for name in SHIPPED_STATIC:
            status, body = http_get(f"{base}/static/{name}")
            assert status == 200 and body == (REPO / "static" / name).read_bytes(), name

        status, body = http_get(f"{base}/api/v1/vm-contexts", token)
        assert status == 200 and json.loads(body)["count"] == 12
        assert http_get(f"{base}/api/v1/vm-contexts")[0] == 401

        # The API contracts ship in the wheel too (pushsvc/contracts/*.yaml as package data).
        for path, name in (("openapi.json", OPENAPI), ("asyncapi.json", ASYNCAPI)):
            status, body = http_get(f"{base}/api/v1/{path}")
            assert status == 200 and json.loads(body) == load_document(name), path
