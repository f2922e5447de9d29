"""Review of issue 11: the pairs view never claims `clean` for a pair nobody looked up."""

from __future__ import annotations

from pathlib import Path

from rblwatch.model import CycleCommit, Health, ListStatus
from rblwatch.runtime import Runtime
from rblwatch.store.sqlite import SqliteStore
from tests.test_engine import ADDRS, make_config
from tests.test_pair_errors import view_of

T0 = 1_795_780_800.0


def test_a_target_added_since_the_list_s_last_cycle_is_not_shown_clean(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "state.db"))
    try:
        old, new = ADDRS[:3], ADDRS[3]
        status = ListStatus("bl", Health.HEALTHY, "", T0 - 600, T0 - 5, T0, T0, 5.0, 3, 0, 3)
        # the list's last cycle looked up three targets; the fourth was configured since
        store.commit(CycleCommit("bl", seen=list(old), status=status))
        rt = Runtime(make_config(53), store)
        shown = view_of(rt, T0 + 60)
        assert {shown[t]["state"] for t in old} == {"clean"}
        assert shown[new]["state"] == "unknown", shown[new]  # never looked up: not clean
        assert shown[new]["last_checked"] is None
    finally:
        store.close()
