"""``certsms demo --fast``: the whole walk-through ends well and lists the evidence files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_demo_fast_ends_successfully_with_the_evidence_listed(tmp_path: Path) -> None:
    """Every step ends as expected (exit 0) and each listed certificate ZIP exists on disk."""
    var_dir = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CERTSMS_", "MENSATEK_"))}
    env.pop("REDIS_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "certsms.worker.cli", "demo", "--fast", "--var-dir", str(var_dir)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout
    assert done.returncode == 0, output + done.stderr
    assert "demo finished: every step ended as expected" in output
    for state in ("queued", "sent", "delivered", "certified", "evidence_stored"):
        assert f": {state}" in output or f"→ {state}" in output, state
    assert "queued → sent → delivered → certified → evidence_stored" in output
    assert "scheduled → rescheduled → cancelled" in output
    assert output.count("delivered with Links=1") == 2  # the notice's and the contract's PDF
    assert "Cifcontacto (contact_tax_id)" in output  # a reason of the refused payload
    assert "breaker: open" in output
    assert "\x1b[" not in output  # not a terminal: plain lines, no escape codes
    listed = re.findall(r": (\S+\.zip)  \(\d+ bytes, sha256 [0-9a-f]{16}…, verified\)", output)
    assert len(listed) == 3  # two recipients of the certified SMS, one of the contract
    for path in listed:
        assert Path(path).is_file()
        assert Path(path).is_relative_to(var_dir / "certificates")
