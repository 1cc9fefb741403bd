"""The cluster layout on the real services: two Rasa instances sharing PostgreSQL and Redis behind nginx."""
from __future__ import annotations

import pytest

from tests.cluster.harness import new_sender, user_texts

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]


def test_smoke(cluster):
    s = new_sender()
    print(cluster.text(cluster.rasa(1), s, "IMAX周六多少钱"))
    print(cluster.text(cluster.rasa(2), s, "那周二呢"))
    print(cluster.text(cluster.lb, s, "学生呢"))
    print(user_texts(cluster.tracker(s)))
