"""The flags' rules as plain functions, on hand-made traces (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from studyserver.instrument.definition import get_instrument
from studyserver.quality.flags import (
    FLAG_NAMES,
    FLAGS,
    Thresholds,
    Trace,
    duplicates,
    flags_of,
    is_excluded,
    is_speeding,
    is_straight_lining,
    is_too_fast,
    join_flags,
    multi_item_pages,
    reading_seconds,
    scale_items,
    split_flags,
    study_medians,
)

INSTRUMENT = get_instrument()
RULES = Thresholds()


def _trace(pid: str = "p", seconds: dict[str, float] | None = None, **fields) -> Trace:
    return Trace(participant_id=pid, completed=fields.pop("completed", True),
                 seconds=seconds if seconds is not None else {page.key: 30.0 for page in INSTRUMENT.pages}, **fields)


def test_every_flag_is_defined_once_with_both_labels_and_a_rule():
    assert FLAG_NAMES == ("speeding", "straight_lining", "attention_failed", "duplicate_taker", "honeypot", "too_fast")
    for flag in FLAGS:
        assert flag.label_en and flag.label_fr and "{" not in flag.describe(RULES)
    assert "40 %" in FLAGS[0].describe(Thresholds(speeding_fraction=0.4))


def test_multi_item_pages_come_from_the_definition():
    pages = multi_item_pages(INSTRUMENT, 5)
    assert [page.key for page in pages] == [page.key for page in INSTRUMENT.pages if len(scale_items(page)) >= 5]
    assert {"values", "climate", "emotions"} <= {page.key for page in pages}
    assert "wtp" not in {page.key for page in pages}  # two items: the same answer twice is no pattern


def test_speeding_is_judged_against_the_studys_own_medians():
    normal = [_trace(f"n{i}", {page.key: 30.0 + i for page in INSTRUMENT.pages}) for i in range(12)]
    medians = study_medians(normal)
    assert medians.completes == 12 and medians.pages["values"] == 35.5
    assert not any(is_speeding(trace, medians, RULES) for trace in normal)
    fast = _trace("fast", {page.key: 10.0 for page in INSTRUMENT.pages})  # 10 < 0.4 * 35.5
    assert is_speeding(fast, medians, RULES)
    # Per page: fast on most pages, but a long pause on one keeps the total near the median.
    pages = [page.key for page in INSTRUMENT.pages]
    uneven = _trace("uneven", {key: (400.0 if key == pages[0] else 5.0) for key in pages})
    assert sum(uneven.seconds.values()) > 0.4 * medians.total and is_speeding(uneven, medians, RULES)
    # Too few completes to have a median worth the name: nobody is judged yet.
    assert not is_speeding(fast, study_medians(normal[:5]), RULES)
    assert not is_speeding(_trace("partial", {"ses": 1.0}, completed=False), medians, RULES)


def test_straight_lining_means_one_position_across_a_whole_battery():
    values = INSTRUMENT.page("values")
    same = {item.code: item.options[2].code for item in scale_items(values)}
    assert is_straight_lining(_trace(answers={"values": same}), INSTRUMENT, RULES)
    varied = dict(same, **{scale_items(values)[0].code: scale_items(values)[0].options[3].code})
    assert not is_straight_lining(_trace(answers={"values": varied}), INSTRUMENT, RULES)
    # Climate mixes scales of different lengths: the same *position* on each is the pattern.
    climate = INSTRUMENT.page("climate")
    first = {item.code: item.options[0].code for item in scale_items(climate)}
    assert is_straight_lining(_trace(answers={"climate": first}), INSTRUMENT, RULES)
    assert not is_straight_lining(_trace(answers={"wtp": {"wtp_tax_buildings": 3, "wtp_tax_oil": 3}}), INSTRUMENT, RULES)


def test_too_fast_needs_several_pages_under_their_reading_time():
    ses = INSTRUMENT.page("ses")
    assert reading_seconds(ses, "fr", 1000) > 0 and reading_seconds(ses, "en", 500) == 2 * reading_seconds(ses, "en", 1000)
    instant = _trace(seconds={page.key: 0.2 for page in INSTRUMENT.pages})
    assert is_too_fast(instant, INSTRUMENT, RULES)
    two = _trace(seconds={page.key: (0.2 if page.key in {"ses", "values"} else 60.0) for page in INSTRUMENT.pages})
    assert not is_too_fast(two, INSTRUMENT, RULES)


def test_duplicates_flag_every_later_taker_of_a_browser_or_network_not_the_first():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    traces = [
        _trace("a", browser_id="b1", network_hash="n1", started_at=t0),
        _trace("b", browser_id="b2", network_hash="n2", started_at=t0 + timedelta(minutes=1)),
        _trace("c", browser_id="b1", network_hash="n3", started_at=t0 + timedelta(minutes=2)),  # same browser
        _trace("d", browser_id="b4", network_hash="n2", started_at=t0 + timedelta(minutes=3)),  # same network
        _trace("e", browser_id="", network_hash="", started_at=t0 + timedelta(minutes=4)),  # nothing known
    ]
    assert duplicates(traces) == {"c", "d"}


def test_flags_in_definition_order_and_the_exclusion_rule():
    trace = _trace(attention_passed=False, honeypot_step="ses", seconds={page.key: 0.1 for page in INSTRUMENT.pages})
    raised = flags_of(trace, INSTRUMENT, study_medians([]), True, RULES)
    assert raised == ["attention_failed", "duplicate_taker", "honeypot", "too_fast"]
    assert join_flags(reversed(raised)) == "attention_failed;duplicate_taker;honeypot;too_fast"
    assert split_flags(join_flags(raised)) == raised and join_flags([]) == "" and split_flags(None) == []
    assert is_excluded(raised, ["honeypot"]) and not is_excluded(raised, ["speeding"]) and not is_excluded(raised, [])
