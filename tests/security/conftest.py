"""The stack exactly as `make run` starts it (tests/security/run_stack.py), probed from outside."""
from __future__ import annotations

import uuid

import pytest

from tests.security.run_stack import AES_KEY, APPID, RunStack, start, stop  # noqa: F401 (used by the tests)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def run_stack(tmp_path_factory) -> RunStack:
    # small limits so the tests reach them quickly
    stack = start(tmp_path_factory.mktemp("make-run"), {
        "XINGHE_LIMIT_MESSAGE_SENDER": "8/60", "XINGHE_LIMIT_EMERGENCY_SENDER": "2/600",
        "XINGHE_LIMIT_LOGIN_IP": "40/600"})
    yield stack
    stop(stack)
