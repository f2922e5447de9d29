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
        assert shown[new]["last_outcome"] is None  # no lookup, so no outcome (not "clean")
        assert {shown[t]["last_outcome"] for t in old} == {"clean"}
    finally:
        store.close()


def test_one_instance_s_failed_shard_is_not_shown_clean_when_another_s_shard_answers(
    tmp_path: Path,
) -> None:
    """Several instances (PostgreSQL) share a list by shards, each with its own resolver. The
    list-wide error row is the whole list's, yet each instance writes and clears it from its
    own shard's cycle: B's shard failing entirely writes it (and no per-pair row), A's shard
    answering then clears it, and B's pairs, never answered, read `clean`."""
    from rblwatch.commitplan import CycleInput, plan_commit
    from rblwatch.model import Reason, TargetKind, error, make_targets

    store = SqliteStore(str(tmp_path / "state.db"))
    try:
        targets = make_targets(ADDRS, TargetKind.IPV4, "mail")
        a_shard, b_shard = targets[:2], targets[2:]
        everything = frozenset(ADDRS)

        def cycle(mine: list, outcomes: dict, now: float) -> None:
            stored = {e.target: e for e in store.pair_errors("bl")}
            commit = plan_commit(
                CycleInput(
                    list_name="bl",
                    targets=mine,
                    values=frozenset(t.value for t in mine),
                    outcomes=outcomes,
                    rows={},
                    seen=everything,
                    confirm=1,
                    now=now,
                    errors=stored,
                    last_good_at=T0 - 600,
                    full=True,
                )
            ).commit
            commit.status = ListStatus(
                "bl", Health.HEALTHY, "", None, now - 1, now, now, 1.0, 2, 0, 2
            )
            store.commit(commit)

        # B's resolver is down: every lookup of its shard times out
        cycle(b_shard, {t.value: error(Reason.TIMEOUT) for t in b_shard}, T0)
        # then A's shard of the same list answers
        cycle(a_shard, {}, T0 + 1)
        rt = Runtime(make_config(53), store)
        shown = view_of(rt, T0 + 2)
        for t in b_shard:  # B's pairs have not answered since T0 - 600
            assert shown[t.value]["last_outcome"] == "error", shown[t.value]
    finally:
        store.close()
