"""The cluster layout (``make run-cluster``), started once for tests/cluster/: 2 Rasa and 2 action servers
behind nginx, the web app, supervisord, PostgreSQL and Redis of their own."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="module")  # gone before the rest of the suite runs (2 Rasa instances: ~3 GB)
def cluster(tmp_path_factory):
    from tests.cluster.harness import new_sender, start_cluster

    model = os.environ.get("XINGHE_MODEL")
    if not model:
        pytest.fail("XINGHE_MODEL is not set: run the suite through `make test`")
    c = start_cluster(model, tmp_path_factory.mktemp("cluster"))
    try:
        # every action server loads the knowledge once (round robin behind nginx), as in a running shop
        for i in range(4):
            c.say(c.lb, new_sender("warm"), "停车怎么收费")
        yield c
    finally:
        c.stop()
