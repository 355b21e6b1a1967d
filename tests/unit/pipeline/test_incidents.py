"""Grouping alerts into incidents: pure decisions from message overlap."""

from __future__ import annotations

from datetime import UTC, datetime

from pipeline.incidents import Candidate, OpenIncident, choose_root, group_window, incident_id, overlap

W0 = datetime(2026, 1, 1, 12, tzinfo=UTC)


def ids(prefix: str, n: int, start: int = 0) -> frozenset[str]:
    return frozenset(f"{prefix}{i}" for i in range(start, start + n))


def alert(dimension: str, key: str, messages: frozenset[str]) -> Candidate:
    return Candidate(f"alert-{dimension}-{key}", dimension, key, messages)


# One NVDA burst of 30 negative messages, spread over three topics and three sources, each with
# a little background negativity of its own: every dimension the burst touches alerts.
NVDA = ids("n", 30)
BURST = [
    alert("ticker", "NVDA", NVDA | ids("nv-bg", 2)),
    alert("topic", "Analyst Update", ids("n", 10) | ids("ta", 2)),
    alert("topic", "Stock Movement", ids("n", 10, 10) | ids("ts", 3)),
    alert("topic", "Financials", ids("n", 10, 20)),
    alert("source", "wire", frozenset(f"n{i}" for i in range(0, 30, 3)) | ids("sw", 2)),
    alert("source", "forum", frozenset(f"n{i}" for i in range(1, 30, 3)) | ids("sf", 1)),
    alert("source", "reuters", frozenset(f"n{i}" for i in range(2, 30, 3)) | ids("sr", 3)),
]


def test_one_burst_is_one_incident_rooted_at_its_ticker() -> None:
    grouped = group_window(W0, BURST)
    assert grouped.joined == {}
    [incident] = grouped.new
    assert (incident.root_dimension, incident.root_key) == ("ticker", "NVDA")
    assert incident.alert_ids[0] == "alert-ticker-NVDA"
    assert sorted(incident.alert_ids) == sorted(a.alert_id for a in BURST)
    assert incident.n_alerts == 7 and incident.status == "open" and incident.window_start == W0
    assert incident.id == incident_id("alert-ticker-NVDA"), "deterministic: a hash of the root alert's id"


def test_the_root_comes_from_the_overlap_not_from_the_dimension_order() -> None:
    # a topic made only of this ticker's messages, plus a broad ticker that holds a little of everything:
    # the topic explains the others best, so it is the root although a ticker comes first in the order
    topic = alert("topic", "Mergers", ids("m", 20))
    narrow = alert("source", "wire", ids("m", 15) | ids("w", 2))
    broad = alert("ticker", "SPY", ids("m", 4) | ids("spy", 40))
    root = choose_root([broad, topic, narrow])
    assert (root.dimension, root.key) == ("topic", "Mergers")
    [incident, alone] = group_window(W0, [broad, topic, narrow]).new
    assert incident.alert_ids == [topic.alert_id, narrow.alert_id]
    assert alone.alert_ids == [broad.alert_id], "4 shared messages of 20 are no substantial overlap"


def test_two_unrelated_bursts_are_two_incidents() -> None:
    tsla = ids("t", 25)
    others = [
        alert("ticker", "TSLA", tsla),
        alert("topic", "Earnings", ids("t", 20) | ids("e", 3)),
    ]
    grouped = group_window(W0, [*BURST, *others])
    roots = sorted((i.root_dimension, i.root_key, i.n_alerts) for i in grouped.new)
    assert roots == [("ticker", "NVDA", 7), ("ticker", "TSLA", 2)]


def test_ties_go_to_the_more_specific_dimension() -> None:
    same = ids("x", 12)
    for order in (
        [("source", "wire"), ("topic", "Macro"), ("ticker", "ACME")],
        [("topic", "Macro"), ("source", "wire")],
    ):
        candidates = [alert(d, k, same) for d, k in order]
        [incident] = group_window(W0, candidates).new
        assert incident.root_dimension == min((d for d, _ in order), key=["ticker", "topic", "source"].index)
    # two tickers on the very same messages: the key decides, so the outcome never depends on input order
    a, b = alert("ticker", "BBB", same), alert("ticker", "AAA", same)
    assert group_window(W0, [a, b]).new[0].root_key == group_window(W0, [b, a]).new[0].root_key == "AAA"


def test_the_all_dimension_is_never_the_root_of_others() -> None:
    everything = alert("all", "all", NVDA | ids("bg", 40))
    [incident] = group_window(W0, [everything, *BURST]).new
    assert (incident.root_dimension, incident.root_key) == ("ticker", "NVDA")
    assert everything.alert_id in incident.alert_ids
    assert group_window(W0, [everything]).new[0].root_dimension == "all"


def test_an_alert_of_the_next_window_joins_the_open_incident_it_overlaps() -> None:
    later = ids("n2-", 12)  # the burst goes on: the root key's negatives in the later window
    open_nvda = OpenIncident("incident-nvda", "ticker", "NVDA", "open", later)
    joining = alert("topic", "Earnings", ids("n2-", 10) | ids("e", 2))  # 10 of 12 about NVDA
    unrelated = alert("ticker", "XOM", ids("x", 20))
    again = alert("ticker", "NVDA", frozenset())  # on the root key itself: always part of the story
    grouped = group_window(W0, [joining, unrelated, again], [open_nvda])
    assert grouped.joined == {joining.alert_id: "incident-nvda", again.alert_id: "incident-nvda"}
    assert [(i.root_key, i.alert_ids) for i in grouped.new] == [("XOM", [unrelated.alert_id])]


def test_a_thin_overlap_or_a_resolved_incident_is_not_joined() -> None:
    mostly_other = alert("source", "wire", ids("n2-", 3) | ids("w", 20))  # 3 of 23 about NVDA
    resolved = OpenIncident("incident-old", "ticker", "NVDA", "resolved", ids("n2-", 12))
    open_nvda = OpenIncident("incident-nvda", "ticker", "NVDA", "open", ids("n2-", 12))
    assert group_window(W0, [mostly_other], [open_nvda]).joined == {}
    assert group_window(W0, [alert("ticker", "NVDA", ids("n2-", 12))], [resolved]).joined == {}


def test_overlap_coefficient() -> None:
    assert overlap(ids("a", 10), ids("a", 4)) == 1.0
    assert overlap(ids("a", 10), ids("b", 4)) == 0.0
    assert overlap(frozenset(), ids("a", 3)) == 0.0
