"""A scan end to end against real peers: outcomes (SPEC §2), list health (§3), nameservers (§8).

rbldnsd serves the lists that behave; faultdns plays the lists and resolvers that do not. Every
scan here is `plans_for` → `probe_health` → `scan`, the way `rblwatch check` runs one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import types
from collections.abc import Iterator, Sequence

import pytest

from rblwatch import catalogue
from rblwatch.lookup import prefix_wire
from rblwatch.model import (
    DnsList,
    Health,
    Kind,
    Nameserver,
    Outcome,
    OutcomeKind,
    Purpose,
    Reason,
    Target,
)
from rblwatch.resolver import Resolver
from rblwatch.scan import Report, Result, Servers, _Scan, plans_for, probe_health, scan
from rblwatch.targets import parse_target
from tests.faultdns import SPOOF_A, Action, Fault, FaultDns
from tests.rbldnsd import Rbldnsd, available

TIMEOUT = 0.2
ATTEMPTS = 2

BL = DnsList(name="bl", zone="bl.test", ipv6=True)
V4ONLY = DnsList(name="v4only", zone="v4only.test")
DBL = DnsList(name="dbl", zone="dbl.test", kind=Kind.DOMAIN)
DEAD = DnsList(name="dead", zone="dead.test")
EVERYTHING = DnsList(name="everything", zone="everything.test")
PLAIN = DnsList(name="plain", zone="bl.test")  # no codes: any 127/8 answer is a listing


def resolver(**kw: int) -> Resolver:
    return Resolver(timeout=TIMEOUT, attempts=ATTEMPTS, **kw)


def targets(*texts: str) -> list[Target]:
    return [t for text in texts for t in parse_target(text)]


def check(
    lists: Sequence[DnsList],
    servers: Servers,
    target_texts: Sequence[str],
    *,
    probe: bool = True,
    override: Servers | None = None,
    res: Resolver | None = None,
    fetch_txt: bool = False,
) -> Report:
    """One scan of every target on every list, keeping clean results too."""
    plans = plans_for(lists, servers, override)
    r = res or resolver()

    async def go() -> Report:
        if probe:
            await probe_health(r, plans)
        return await scan(r, targets(*target_texts), plans, keep_clean=True, fetch_txt=fetch_txt)

    return asyncio.run(go())


def outcomes(report: Report) -> dict[tuple[str, str], Outcome]:
    """(target value, list name) → outcome; a lookup reported twice fails the test."""
    out: dict[tuple[str, str], Outcome] = {}
    for r in report.results:
        key = (r.target.value, r.lst.name)
        assert key not in out, f"{key} reported twice"
        out[key] = r.outcome
    return out


def verdicts(report: Report) -> dict[str, Health]:
    return {p.lst.name: p.verdict.health for p in report.plans}


def qname(address: str, zone: str) -> str:
    return ".".join([*reversed(address.split(".")), zone])


# -- a real DNSBL server ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bl() -> Iterator[Rbldnsd]:
    """One rbldnsd for the module: a healthy IPv4+IPv6 list, an IPv4-only one, a domain list,
    a dead list (no 127.0.0.2) and one whose wildcard lists every address."""
    if not available():
        pytest.skip("rbldnsd is not installed (Debian package rbldnsd)")
    srv = Rbldnsd()
    srv.add_zone(
        "bl.test",
        "combined",
        [
            "$DATASET ip4set @",
            ":127.0.0.2:Listed: $",
            "127.0.0.2",
            "192.0.2.10 :127.0.0.2:spam",
            "192.0.2.10 :127.0.0.4:exploited",
            "$DATASET ip6trie @",
            "::ffff:7f00:2 :127.0.0.2:v6 test point",
            "2001:db8:bad::/48 :127.0.0.3:v6 bad net",
        ],
    )
    srv.add_zone("v4only.test", "ip4set", ["127.0.0.2", "192.0.2.10 :127.0.0.5:v4"])
    srv.add_zone("dbl.test", "dnset", [":127.0.1.2:Domain $", "test", "xn--bcher-kva.example"])
    srv.add_zone("dead.test", "ip4set", ["192.0.2.10 :127.0.0.2:stale"])
    srv.add_zone("everything.test", "ip4set", ["0-255 :127.0.0.2:parked"])
    try:
        srv.start()
        yield srv
    finally:
        srv.close()


def test_a_listed_address_is_listed_with_every_code_and_its_text(bl: Rbldnsd) -> None:
    report = check([BL], (bl.address,), ["192.0.2.10"], fetch_txt=True)
    out = outcomes(report)[("192.0.2.10", "bl")]
    assert out.kind is OutcomeKind.LISTED
    assert out.codes == ("127.0.0.2", "127.0.0.4")
    assert out.ttl == 30
    assert out.txt is not None
    assert sorted(out.txt.split("; ")) == ["exploited", "spam"]


def test_without_fetch_txt_no_text_is_asked_for(bl: Rbldnsd) -> None:
    out = outcomes(check([BL], (bl.address,), ["192.0.2.10"]))[("192.0.2.10", "bl")]
    assert out.kind is OutcomeKind.LISTED
    assert out.txt is None


def test_a_clean_address_is_clean(bl: Rbldnsd) -> None:
    report = check([BL, V4ONLY], (bl.address,), ["198.51.100.7"])
    assert {k: o.kind for k, o in outcomes(report).items()} == {
        ("198.51.100.7", "bl"): OutcomeKind.CLEAN,
        ("198.51.100.7", "v4only"): OutcomeKind.CLEAN,
    }


def test_an_ipv6_address_is_listed_on_an_ipv6_list_and_not_asked_of_ipv4_lists(
    bl: Rbldnsd,
) -> None:
    report = check([BL, V4ONLY], (bl.address,), ["2001:db8:bad::25", "2001:db8:600d::25"])
    assert verdicts(report) == {"bl": Health.HEALTHY, "v4only": Health.HEALTHY}
    got = {k: (o.kind, o.codes) for k, o in outcomes(report).items()}
    assert got == {
        ("2001:db8:bad::25", "bl"): (OutcomeKind.LISTED, ("127.0.0.3",)),
        ("2001:db8:600d::25", "bl"): (OutcomeKind.CLEAN, ()),
    }
    assert report.summary.lookups == 2


def test_an_idn_domain_is_looked_up_by_its_a_label(bl: Rbldnsd) -> None:
    report = check([DBL, BL], (bl.address,), ["bücher.example", "example.org"])
    assert verdicts(report)["dbl"] is Health.HEALTHY
    got = {k: o.kind for k, o in outcomes(report).items()}
    assert got == {
        ("xn--bcher-kva.example", "dbl"): OutcomeKind.LISTED,
        ("example.org", "dbl"): OutcomeKind.CLEAN,
    }
    assert outcomes(report)[("xn--bcher-kva.example", "dbl")].codes == ("127.0.1.2",)


# -- list health --------------------------------------------------------------------------------


def test_a_list_answering_its_test_points_is_healthy(bl: Rbldnsd) -> None:
    report = check([BL, V4ONLY, DBL], (bl.address,), [])
    assert verdicts(report) == {
        "bl": Health.HEALTHY,
        "v4only": Health.HEALTHY,
        "dbl": Health.HEALTHY,
    }


def test_a_list_without_127_0_0_2_is_dead_and_its_lookups_are_list_unhealthy(bl: Rbldnsd) -> None:
    report = check([DEAD, V4ONLY], (bl.address,), ["192.0.2.10"])
    assert verdicts(report) == {"dead": Health.DEAD, "v4only": Health.HEALTHY}
    out = outcomes(report)
    # rbldnsd does list 192.0.2.10 on dead.test, but a dead list's word is not taken
    assert out[("192.0.2.10", "dead")].kind is OutcomeKind.ERROR
    assert out[("192.0.2.10", "dead")].reason is Reason.LIST_UNHEALTHY
    assert "dead" in out[("192.0.2.10", "dead")].detail
    assert out[("192.0.2.10", "v4only")].kind is OutcomeKind.LISTED


def test_a_list_that_lists_127_0_0_1_lists_everything_and_never_reports_a_listing(
    bl: Rbldnsd,
) -> None:
    report = check([EVERYTHING], (bl.address,), ["192.0.2.10", "198.51.100.7"])
    assert verdicts(report) == {"everything": Health.LISTS_EVERYTHING}
    assert {o.reason for o in outcomes(report).values()} == {Reason.LIST_UNHEALTHY}
    assert report.summary.listed == 0
    assert report.summary.error == 2


def test_a_list_nobody_answers_is_dead(rbldnsd: Rbldnsd) -> None:
    rbldnsd.add_zone("bl.test", "ip4set", ["127.0.0.2"])
    rbldnsd.start()
    rbldnsd.stop()
    report = check([PLAIN], (rbldnsd.address,), ["192.0.2.10"])
    assert verdicts(report) == {"plain": Health.DEAD}
    assert outcomes(report)[("192.0.2.10", "plain")].reason is Reason.LIST_UNHEALTHY


def test_an_unhealthy_list_is_not_asked_about_targets(faultdns: FaultDns) -> None:
    # 127.0.0.2 is not listed (default NXDOMAIN): dead, although the target would be listed
    faultdns.rule(qname("192.0.2.10", "bl.test"), a=["127.0.0.2"])
    report = check([PLAIN], (faultdns.address,), ["192.0.2.10"])
    assert verdicts(report) == {"plain": Health.DEAD}
    assert outcomes(report)[("192.0.2.10", "plain")].reason is Reason.LIST_UNHEALTHY
    assert faultdns.count(qname("192.0.2.10", "bl.test")) == 0
    assert faultdns.count(qname("127.0.0.2", "bl.test")) == 1


def test_a_list_refusing_its_test_points_is_blocked_and_not_believed(faultdns: FaultDns) -> None:
    zen = dataclasses.replace(catalogue.get("spamhaus-zen"), zone="zen.test", ipv6=False)
    faultdns.rule("*.zen.test", a=["127.255.255.254"])
    report = check([zen], (faultdns.address,), ["192.0.2.10"])
    assert verdicts(report) == {"spamhaus-zen": Health.BLOCKED}
    assert outcomes(report)[("192.0.2.10", "spamhaus-zen")].reason is Reason.LIST_UNHEALTHY


# -- what misbehaving servers turn into ---------------------------------------------------------

ADDRESS = "192.0.2.10"
NAME = qname(ADDRESS, "bl.test")


def one(lst: DnsList, server: FaultDns, res: Resolver | None = None) -> Outcome:
    """The outcome of ADDRESS on one list served by faultdns (health not probed)."""
    report = check([lst], (server.address,), [ADDRESS], probe=False, res=res)
    assert report.summary.lookups == 1
    return outcomes(report)[(ADDRESS, lst.name)]


def test_a_timeout_is_an_error_and_never_clean(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.DROP)
    out = one(PLAIN, faultdns)
    assert (out.kind, out.reason) == (OutcomeKind.ERROR, Reason.TIMEOUT)
    assert faultdns.count(NAME) == ATTEMPTS


@pytest.mark.parametrize(
    ("actions", "reason"),
    [
        ([Action(Fault.DROP), Action(Fault.SERVFAIL)], Reason.SERVFAIL),
        ([Action(Fault.DROP), Action(Fault.REFUSED)], Reason.REFUSED),
        ([Action(Fault.GARBAGE), Action(Fault.DROP)], Reason.TIMEOUT),
        ([Action(Fault.WRONG_ID), Action(Fault.WRONG_PORT)], Reason.TIMEOUT),
        ([Action(Fault.SERVFAIL), Action(Fault.NXDOMAIN)], Reason.SERVFAIL),
    ],
    ids=["drop-servfail", "drop-refused", "garbage-drop", "wrongid-wrongport", "servfail-nx"],
)
def test_an_error_never_turns_clean_across_attempts(
    faultdns: FaultDns, actions: list[Action], reason: Reason
) -> None:
    faultdns.sequence(NAME, actions)
    out = one(PLAIN, faultdns)
    assert (out.kind, out.reason) == (OutcomeKind.ERROR, reason)


def test_a_drop_then_an_answer_is_listed_on_the_second_attempt(faultdns: FaultDns) -> None:
    faultdns.sequence(NAME, [Action(Fault.DROP), Action(a=["127.0.0.2"])])
    out = one(PLAIN, faultdns)
    assert (out.kind, out.codes) == (OutcomeKind.LISTED, ("127.0.0.2",))
    assert faultdns.count(NAME) == 2


@pytest.mark.parametrize(
    ("fault", "reason"), [(Fault.SERVFAIL, Reason.SERVFAIL), (Fault.REFUSED, Reason.REFUSED)]
)
def test_an_rcode_error_is_reported_as_its_reason(
    faultdns: FaultDns, fault: Fault, reason: Reason
) -> None:
    faultdns.rule(NAME, fault)
    assert one(PLAIN, faultdns).reason is reason


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ("127.255.255.252", Reason.BLOCKED),
        ("127.255.255.254", Reason.BLOCKED),
        ("127.255.255.255", Reason.RATE_LIMITED),
    ],
)
def test_spamhaus_refusal_codes_are_errors_not_listings(
    faultdns: FaultDns, answer: str, reason: Reason
) -> None:
    zen = dataclasses.replace(catalogue.get("spamhaus-zen"), zone="bl.test")
    faultdns.rule(NAME, a=[answer])
    out = one(zen, faultdns)
    assert (out.kind, out.reason) == (OutcomeKind.ERROR, reason)


def test_spamhaus_listing_codes_carry_their_meanings(faultdns: FaultDns) -> None:
    zen = dataclasses.replace(catalogue.get("spamhaus-zen"), zone="bl.test")
    faultdns.rule(NAME, a=["127.0.0.4", "127.0.0.2"])
    out = one(zen, faultdns)
    assert out.kind is OutcomeKind.LISTED
    assert out.codes == ("127.0.0.2", "127.0.0.4")
    assert out.meanings[0].startswith("SBL")


def test_uribl_answering_127_0_0_1_is_blocked(faultdns: FaultDns) -> None:
    uribl = dataclasses.replace(catalogue.get("uribl-multi"), zone="uribl.test")
    faultdns.rule("bad.example.uribl.test", a=["127.0.0.1"])
    faultdns.rule("worse.example.uribl.test", a=["127.0.0.2"])
    report = check([uribl], (faultdns.address,), ["bad.example", "worse.example"], probe=False)
    out = outcomes(report)
    assert out[("bad.example", "uribl-multi")].reason is Reason.BLOCKED
    assert out[("worse.example", "uribl-multi")].kind is OutcomeKind.LISTED


@pytest.mark.parametrize("cname", [None, "search.isp.example"])
def test_an_answer_outside_127_is_a_bad_answer(faultdns: FaultDns, cname: str | None) -> None:
    faultdns.rule(NAME, a=["10.1.2.3"], cname=cname)
    out = one(PLAIN, faultdns)
    assert (out.kind, out.reason) == (OutcomeKind.ERROR, Reason.BAD_ANSWER)
    assert "10.1.2.3" in out.detail


def test_a_truncated_answer_is_listed_from_tcp(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.TRUNCATE, a=["127.0.0.2", "127.0.0.3"])
    out = one(PLAIN, faultdns)
    assert (out.kind, out.codes) == (OutcomeKind.LISTED, ("127.0.0.2", "127.0.0.3"))
    assert faultdns.count(NAME, transport="tcp") == 1


def test_each_listing_carries_the_ttl_of_its_own_answer(faultdns: FaultDns) -> None:
    # the same code for every address: a listing must not come back with another one's TTL
    ttls = {"192.0.2.1": 60, "192.0.2.2": 300, "192.0.2.3": 60}
    for address, ttl in ttls.items():
        faultdns.rule(qname(address, "bl.test"), a=["127.0.0.2"], ttl=ttl)
    report = check([PLAIN], (faultdns.address,), list(ttls), probe=False)
    assert {t: o.ttl for (t, _l), o in outcomes(report).items()} == ttls


def test_garbage_is_ignored_and_counted_and_ends_in_timeout(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.GARBAGE)
    res = resolver()
    assert one(PLAIN, faultdns, res).reason is Reason.TIMEOUT
    assert res.stats.dropped == ATTEMPTS


@pytest.mark.parametrize("fault", [Fault.WRONG_ID, Fault.WRONG_QUESTION, Fault.WRONG_PORT])
def test_a_misaddressed_listing_is_not_believed(faultdns: FaultDns, fault: Fault) -> None:
    faultdns.rule(NAME, fault, a=["127.0.0.2"])
    res = resolver()
    out = one(PLAIN, faultdns, res)
    assert (out.kind, out.reason) == (OutcomeKind.ERROR, Reason.TIMEOUT)
    # a reply from another port may be discarded by the kernel (connected socket), unseen
    assert res.stats.dropped == (res.stats.received if fault is Fault.WRONG_PORT else ATTEMPTS)


def test_a_spoofed_listing_loses_to_the_real_answer(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.SPOOF_THEN_REAL, a=["127.0.0.3"], delay_ms=30)
    out = one(PLAIN, faultdns)
    assert out.kind is OutcomeKind.LISTED
    assert SPOOF_A not in out.codes
    assert out.codes == ("127.0.0.3",)


def test_a_spoofed_listing_loses_to_a_real_nxdomain(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.SPOOF_THEN_REAL, a=[], delay_ms=30)
    assert one(PLAIN, faultdns).kind is OutcomeKind.CLEAN


def test_a_slow_answer_within_the_timeout_is_listed(faultdns: FaultDns) -> None:
    faultdns.rule(NAME, Fault.DELAY, delay_ms=100, a=["127.0.0.2"])
    assert one(PLAIN, faultdns).kind is OutcomeKind.LISTED


def test_an_allow_list_hit_is_allowlisted(faultdns: FaultDns) -> None:
    allow = DnsList(name="allow", zone="bl.test", purpose=Purpose.ALLOW)
    faultdns.rule(NAME, a=["127.0.10.2"])
    report = check([allow], (faultdns.address,), [ADDRESS], probe=False)
    assert outcomes(report)[(ADDRESS, "allow")].kind is OutcomeKind.ALLOWLISTED
    assert report.summary.allowlisted == 1


# -- the summary ----------------------------------------------------------------------------------


def test_the_summary_counts_every_reported_result_once(faultdns: FaultDns) -> None:
    kinds = [
        Action(Fault.NXDOMAIN),
        Action(a=["127.0.0.2"]),
        Action(Fault.SERVFAIL),
        Action(Fault.DROP),
        Action(Fault.NODATA),
    ]
    addresses = [f"10.1.0.{i}" for i in range(50)]
    for i, address in enumerate(addresses):
        faultdns.sequence(qname(address, "bl.test"), [kinds[i % len(kinds)]])
    other = DnsList(name="other", zone="other.test")  # default: NXDOMAIN for every name
    lists = [PLAIN, other]
    plans = plans_for(lists, (faultdns.address,))
    res = resolver()

    kept = asyncio.run(scan(res, targets(*addresses), plans, keep_clean=True))
    s = kept.summary
    assert s.lookups == len(kept.results) == 100
    assert s.listed == sum(1 for r in kept.results if r.outcome.kind is OutcomeKind.LISTED) == 10
    assert s.error == sum(1 for r in kept.results if r.outcome.is_error) == 20
    assert s.clean == sum(1 for r in kept.results if r.outcome.kind is OutcomeKind.CLEAN) == 70
    assert s.listed + s.clean + s.error + s.allowlisted == s.lookups

    # without keep_clean the clean results are counted but not kept
    faultdns.clear()
    for i, address in enumerate(addresses):
        faultdns.sequence(qname(address, "bl.test"), [kinds[i % len(kinds)]])
    lean = asyncio.run(scan(res, targets(*addresses), plans))
    assert lean.summary == s
    assert len(lean.results) == s.listed + s.error
    assert all(r.outcome.kind is not OutcomeKind.CLEAN for r in lean.results)


def test_progress_ends_with_every_lookup_done(faultdns: FaultDns) -> None:
    calls: list[tuple[int, int]] = []
    plans = plans_for([PLAIN], (faultdns.address,))
    tgts = targets(*(f"10.2.0.{i}" for i in range(20)))
    asyncio.run(
        scan(resolver(), tgts, plans, progress=lambda done, total: calls.append((done, total)))
    )
    assert calls[-1] == (20, 20)
    assert [d for d, _t in calls] == sorted(d for d, _t in calls)


# -- query labels given by the caller (a daemon cycle) --------------------------------------------


@pytest.mark.parametrize(
    ("lists", "texts"),
    [
        ([BL], ["192.0.2.8/29", "2001:db8:bad::1"]),  # one list, two kinds: the fast path
        (
            [BL, V4ONLY, DBL],
            ["192.0.2.8/29", "2001:db8:bad::1", "xn--bcher-kva.example", "clean.example"],
        ),
        ([BL, DEAD], ["192.0.2.8/29"]),  # an unhealthy list: recorded, never asked
    ],
)
def test_scanning_with_the_labels_given_reports_what_building_them_does(
    bl: Rbldnsd, lists: list[DnsList], texts: list[str]
) -> None:
    plans = plans_for(lists, (bl.address,))
    tgts = targets(*texts)
    labels = [prefix_wire(t.value, t.kind) for t in tgts]

    async def go() -> tuple[Report, Report]:
        await probe_health(resolver(), plans)
        built = await scan(resolver(), tgts, plans, keep_clean=True)
        given = await scan(resolver(), tgts, plans, keep_clean=True, prefixes=labels)
        return built, given

    built, given = asyncio.run(go())
    assert outcomes(given) == outcomes(built)
    assert given.summary == built.summary
    assert any(o.kind is OutcomeKind.LISTED for o in outcomes(given).values())


def test_one_tuple_of_templates_and_given_labels_make_the_jobs_without_a_generator() -> None:
    plans = plans_for([BL], (("127.0.0.1", 53),))
    tgts = targets("192.0.2.0/30", "2001:db8::1")
    labels = [prefix_wire(t.value, t.kind) for t in tgts]
    jobs = _Scan(tgts, plans, False, labels).jobs()
    assert not isinstance(jobs, types.GeneratorType)
    assert [(ti, p) for ti, _tpls, p in jobs] == list(enumerate(labels))


# -- which nameservers are asked ----------------------------------------------------------------


def test_each_list_asks_its_own_nameservers() -> None:
    with FaultDns() as first, FaultDns() as second, FaultDns() as default:
        first.default = Action(a=["127.0.0.2"])
        second.default = Action(a=["127.0.0.3"])
        a = DnsList(name="a", zone="a.test", nameservers=(Nameserver("127.0.0.1", first.port),))
        b = DnsList(name="b", zone="b.test", nameservers=(Nameserver("127.0.0.1", second.port),))
        c = DnsList(name="c", zone="c.test")
        report = check([a, b, c], (default.address,), [ADDRESS], probe=False)
        got = {name: o.codes for (_t, name), o in outcomes(report).items()}
        assert got == {"a": ("127.0.0.2",), "b": ("127.0.0.3",), "c": ()}
        assert {q.name for q in first.queries} == {qname(ADDRESS, "a.test")}
        assert {q.name for q in second.queries} == {qname(ADDRESS, "b.test")}
        assert {q.name for q in default.queries} == {qname(ADDRESS, "c.test")}


def test_an_override_sends_every_list_to_one_server() -> None:
    with FaultDns() as first, FaultDns() as second, FaultDns() as override:
        a = DnsList(name="a", zone="a.test", nameservers=(Nameserver("127.0.0.1", first.port),))
        b = DnsList(name="b", zone="b.test", nameservers=(Nameserver("127.0.0.1", second.port),))
        c = DnsList(name="c", zone="c.test")
        plans = plans_for([a, b, c], (first.address,), override=(override.address,))
        assert {p.template.servers for p in plans} == {(override.address,)}
        report = check(
            [a, b, c], (first.address,), [ADDRESS], probe=False, override=(override.address,)
        )
        assert report.summary.clean == 3
        assert first.queries == [] and second.queries == []
        assert sorted(q.name for q in override.queries) == sorted(
            qname(ADDRESS, z) for z in ("a.test", "b.test", "c.test")
        )


def test_a_list_nameserver_may_be_an_ipv6_address() -> None:
    # "[::1]:5353" is parsed by config (tests/test_config.py); the plan takes it as it is
    lst = DnsList(name="a", zone="a.test", nameservers=(Nameserver("::1", 5353),))
    (plan,) = plans_for([lst], (("127.0.0.1", 53),))
    assert plan.template.servers == (("::1", 5353),)


def test_a_report_repr_stays_short_however_many_results_it_holds() -> None:
    # asyncio.run() formats its main task's result while restoring SIGINT: a full dataclass
    # repr of a /16's results would be built (and thrown away) at the end of every scan
    report = Report(plans_for([BL], (("127.0.0.1", 53),)))
    listed = Outcome(OutcomeKind.LISTED, ("127.0.0.2",))
    report.results = [
        Result(targets(f"10.0.{i // 256}.{i % 256}")[0], BL, listed) for i in range(10_000)
    ]
    text = repr(report)
    assert len(text) < 200
    assert "1 lists" in text and "10000 results" in text


def test_progress_moves_while_a_scan_of_nxdomain_answers_runs(faultdns: FaultDns) -> None:
    # every answer a plain NXDOMAIN (faultdns' default), one lookup in flight at a time so
    # the scan lasts a while: only the resolver counts such answers, and the progress bar must
    # see them counted as they come, not only when the run ends
    for last in range(0, 250, 10):  # a listing now and then: recorded by the scan itself
        faultdns.rule(f"{last}.7.0.192.bl.test", Fault.ANSWER, a=["127.0.0.2"])
    plans = plans_for([PLAIN], (faultdns.address,))
    seen: list[int] = []

    async def go() -> Report:
        return await scan(
            resolver(max_in_flight=1),
            targets("192.0.0.0/21"),
            plans,
            progress=lambda done, total: seen.append(done),
        )

    report = asyncio.run(go())
    assert (report.summary.clean, report.summary.listed) == (2048 - 25, 25)
    assert seen[-1] == 2048
    during = [d for d in seen[:-1] if 0 < d < 2048]
    assert len(during) >= 2, seen  # the bar moved during the scan
    assert seen == sorted(seen), seen  # and never back
