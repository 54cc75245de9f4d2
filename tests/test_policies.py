"""Each shipped policy carries the notice's own deadline (逾期上报无效)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from intake.kernel.policy import is_late, load_policy
from tests.conftest import codes, judge

BEIJING = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("name, deadline", [
    ("roadshow", datetime(2024, 7, 31, 23, 59, 59, tzinfo=BEIJING)),  # the roadshow projects
    ("innovation", datetime(2024, 6, 28, 23, 59, 59, tzinfo=BEIJING)),  # §一(二): 2024-04-08 to 06-28
])
def test_each_policy_has_the_notices_deadline(name, deadline):
    policy = load_policy(name)
    assert policy.deadline == deadline
    assert not is_late(deadline, policy)
    assert is_late(deadline + timedelta(seconds=1), policy)


def test_an_innovation_result_sent_in_july_is_late(tmp_path):
    folder = tmp_path / "成果"
    folder.mkdir()
    report = judge(folder, load_policy("innovation"), "2024-07-01T10:00:00+08:00")
    assert report["verdict"] == "rejected" and codes(report)[0] == "deadline.late"
    on_time = judge(folder, load_policy("innovation"), "2024-06-28T10:00:00+08:00")
    assert "deadline.late" not in codes(on_time)
