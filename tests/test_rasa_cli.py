"""Rasa's own checks: data validation and test stories against the trained model."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RASA = str(Path(sys.executable).with_name("rasa"))


def _run(args, timeout=900):
    env = dict(os.environ, RASA_TELEMETRY_ENABLED="false")
    return subprocess.run([RASA, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_rasa_data_validate():
    proc = _run(["data", "validate", "--data", "data", "--domain", "domain.yml", "--config", "config.yml"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_rasa_test_stories(tmp_path):
    model = os.environ.get("XINGHE_MODEL")
    if not model:
        pytest.fail("XINGHE_MODEL is not set: run the suite through `make test`")
    out = tmp_path / "results"
    proc = _run(["test", "core", "--model", model, "--stories", "tests/stories", "--out", str(out),
                 "--fail-on-prediction-errors"])
    failed = out / "failed_test_stories.yml"
    detail = failed.read_text(encoding="utf-8") if failed.exists() else ""
    assert proc.returncode == 0, (proc.stdout[-2000:] + proc.stderr[-3000:] + detail)[-6000:]
