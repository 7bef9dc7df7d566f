"""The wheel installs next to an application's own ``config``, ``tasks`` and ``worker``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import redis

from certsms.config.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

APP = """
import json, sys
import config, tasks, worker                     # the application's own modules
assert (config.OWNER, tasks.OWNER, worker.OWNER) == ("app", "app", "app")
from certsms import enqueue_send, job_status
job_id = enqueue_send({
    "Remitente": "ACME", "Mensaje": "Hola", "Destinatarios": [{"Movil": "34600000001"}],
    "Contacto": "ACME S.L.", "Telcontacto": "900000000", "Cifcontacto": "B00000000",
})
import certsms
print(json.dumps({
    "job_id": job_id,
    "status": str(job_status(job_id).status),
    "certsms_file": certsms.__file__,
    "flask_loaded": "flask" in sys.modules,
}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from this checkout."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (found,) = out.glob("certsms-*.whl")
    return found


def test_install_wheel_holds_only_the_certsms_package(wheel: Path) -> None:
    """Nothing but ``certsms`` (and its metadata) goes into site-packages; bench stays out."""
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"certsms"}
    assert "certsms/py.typed" in names
    assert "certsms/worker/guard/limiter.lua" in names
    assert any(n.startswith("certsms/worker/web/console/templates/") for n in names)


def test_install_beside_an_application_with_its_own_config_and_tasks(
    wheel: Path, tmp_path: Path, settings: Settings, redis_client: redis.Redis
) -> None:
    """A fresh venv with the wheel enqueues a job from an app that has config.py and tasks.py."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "-q",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # the dependencies come from this checkout's venv (no network); certsms from the wheel
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    app = tmp_path / "app"
    app.mkdir()
    for name in ("config", "tasks", "worker"):
        (app / f"{name}.py").write_text('OWNER = "app"\n')
    (app / "main.py").write_text(APP)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "REDIS_URL": settings.redis_url,
        "CERTSMS_NAMESPACE": settings.namespace,
        "CERTSMS_LOG_LEVEL": "WARNING",
    }
    done = subprocess.run(
        [str(python), "main.py"], cwd=app, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "queued"
    assert Path(result["certsms_file"]).is_relative_to(venv)
    assert result["flask_loaded"] is False  # a producer does not load the web stack
    assert redis_client.exists(settings.key("job", result["job_id"]))
