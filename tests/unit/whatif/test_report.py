"""Per-campaign totals, the diff of one event and what the report writes: effect shapes as the
emulator makes them (emulator/talon_one_emulator/rules/effects.py, loyalty.py)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from talon_stream.core._calls import Operation, TalonCall
from talon_stream.core._events import decode_event
from talon_stream.core._records import InputRecord
from talon_stream.whatif import (
    MEASURES,
    CampaignTotals,
    EventDiff,
    EventsCsv,
    LiveOutcome,
    WhatIfReport,
    restrict,
    tally,
)

SINCE = datetime(2026, 12, 5, 10, tzinfo=UTC)
UNTIL = datetime(2026, 12, 5, 11, tzinfo=UTC)


def effect(campaign: int, kind: str, rule: int = 0, **props: Any) -> dict[str, Any]:
    return {
        "campaignId": campaign,
        "rulesetId": campaign * 100,
        "ruleIndex": rule,
        "ruleName": f"rule {campaign}/{rule}",
        "effectType": kind,
        "props": props,
    }


CART = [
    effect(1, "acceptCoupon", value="xmas20"),
    effect(1, "setDiscount", name="20% off", value=24.6),
    effect(12, "setDiscountPerItem", name="5 off trousers", value=5, position=0),
    effect(12, "setDiscountPerItem", name="5 off trousers", value=5, position=1),
    effect(5, "addLoyaltyPoints", name="1 point per unit", value=123, transactionUUID="t-1"),
    effect(13, "deductLoyaltyPoints", value=100, transactionUUID="t-2"),
    effect(13, "setDiscount", name="10 off paid with points", value=10),
    effect(10, "setDiscountPerAdditionalCost", name="Free shipping", value=4.9),
    effect(3, "rejectCoupon", value="SHOES15", rejectionReason="CouponPartOfNotRunningCampaign"),
    effect(4, "showNotification", title="Welcome!"),
]


def test_totals_add_each_measure_by_campaign() -> None:
    totals = {c: CampaignTotals() for c in (1, 3, 5, 10, 12, 13)}
    tally(totals, CART, closing=False)
    tally(totals, CART, closing=True)
    assert totals[1] == CampaignTotals(
        triggered=2, discount=49.2, discount_on_orders=24.6, coupons_accepted=2
    )
    assert totals[12].discount == 20.0
    assert totals[12].discount_on_orders == 10.0
    assert totals[12].triggered == 2  # two effects in one event trigger it once per event
    assert totals[5] == CampaignTotals(
        triggered=2, points_added=246.0, points_added_on_orders=123.0
    )
    assert totals[13] == CampaignTotals(
        triggered=2, discount=20.0, discount_on_orders=10.0, points_deducted=200.0
    )
    assert totals[10].discount == 9.8
    # A rejection is counted, but the campaign did not trigger.
    assert totals[3] == CampaignTotals(coupons_rejected=2)
    assert 4 not in totals  # campaigns not evaluated are not counted


def diff_of(
    candidate: list[dict[str, Any]],
    live: LiveOutcome | None,
    *,
    event_type: str = "cart.updated",
    status: int = 200,
    error: str | None = None,
) -> EventDiff:
    event = decode_event(
        b'{"eventId": "e-1", "type": "' + event_type.encode() + b'", '
        b'"occurredAt": "2026-12-05T10:30:00Z", "profileId": "ada", "sessionId": "s1"}'
    )
    record = InputRecord("shop.carts", 2, 41, b"ada", b"{}", [], 1_764_930_600_000)
    call = TalonCall(
        Operation.UPDATE_CUSTOMER_SESSION, "s1", {}, {"dry": "true"}, profile_id="ada",
        session_id="s1",
    )  # fmt: skip
    return EventDiff(record, event, call, "req-1", status, error, candidate, live)


def test_an_event_whose_candidate_matches_live_is_unchanged_whatever_transaction_ids() -> None:
    live = restrict(CART, {5, 12})
    candidate = [{**e, "props": {**e["props"], "transactionUUID": "other"}} for e in reversed(live)]
    assert not diff_of(candidate, LiveOutcome(200, live)).changed
    assert diff_of(candidate[1:], LiveOutcome(200, live)).changed
    assert diff_of(candidate, None).changed
    assert not diff_of([], None).changed


def test_the_diff_record_says_where_the_event_came_from_and_both_sides() -> None:
    live = restrict(CART, {12})
    record = diff_of([], LiveOutcome(200, live), event_type="order.placed").to_record(
        {"runId": "r", "campaigns": [12]}
    )
    assert record["source"] == {
        "eventId": "e-1",
        "type": "order.placed",
        "occurredAt": "2026-12-05T10:30:00+00:00",
        "topic": "shop.carts",
        "partition": 2,
        "offset": 41,
        "timestamp": "2025-12-05T10:30:00.000+00:00",
    }
    assert record["whatIf"] == {"runId": "r", "campaigns": [12]}
    assert record["live"] == {"found": True, "status": 200, "effects": live}
    assert record["candidate"] == {"effects": []}
    assert record["changed"] is True
    assert (record["operation"], record["requestId"], record["status"]) == (
        "updateCustomerSessionV2",
        "req-1",
        200,
    )


def test_the_report_counts_evaluated_refused_missing_and_changed_events() -> None:
    report = WhatIfReport("r", (5, 12), SINCE, UNTIL)
    live_12 = LiveOutcome(200, restrict(CART, {5}))
    report.add(diff_of(restrict(CART, {5, 12}), live_12))  # campaign 12 is new
    report.add(diff_of(restrict(CART, {5, 12}), None, event_type="order.placed"))
    report.add(diff_of([], live_12, status=400, error="refused"))
    assert report.evaluated == 2
    assert report.refused == {400: 1}
    assert report.live_missing == 1
    assert report.changed == 2
    assert report.candidate[12].discount == 20.0
    assert report.candidate[12].discount_on_orders == 10.0
    assert report.live[12] == CampaignTotals()
    assert report.live[5].points_added == 123.0  # the refused event is not in the totals
    assert report.candidate[5].points_added_on_orders == 123.0


def test_the_csv_has_a_row_per_campaign_with_each_measure_live_and_candidate(
    tmp_path: Path,
) -> None:
    report = WhatIfReport("r", (12, 1), SINCE, UNTIL)
    report.add(diff_of(restrict(CART, {1, 12}), LiveOutcome(200, restrict(CART, {1}))))
    path = tmp_path / "totals.csv"
    report.write_csv(path)
    rows = list(csv.DictReader(path.open()))
    assert [row["campaign_id"] for row in rows] == ["1", "12"]
    assert list(rows[0]) == [
        "campaign_id",
        "events_evaluated",
        *(f"live_{m}" for m in MEASURES),
        *(f"candidate_{m}" for m in MEASURES),
    ]
    by_id = {row["campaign_id"]: row for row in rows}
    assert by_id["1"]["live_discount"] == by_id["1"]["candidate_discount"] == "24.6"
    assert by_id["12"]["live_discount"] == "0.0"
    assert by_id["12"]["candidate_discount"] == "10.0"
    assert by_id["12"]["candidate_triggered"] == "1"


def test_the_events_csv_and_the_table() -> None:
    out = io.StringIO()
    rows = EventsCsv(out)
    rows.write(diff_of(restrict(CART, {12}), LiveOutcome(200, [])))
    rows.write(diff_of([], None, status=400, error="refused"))
    lines = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert lines[0]["candidate_discount"] == "10.0"
    assert lines[0]["changed"] == "True"
    assert lines[1]["error"] == "refused"
    assert lines[1]["live_found"] == "False"
    report = WhatIfReport("r", (12,), SINCE, UNTIL)
    report.add(diff_of(restrict(CART, {12}), LiveOutcome(200, [])))
    console = Console(record=True, width=200)
    console.print(report.table())
    shown = console.export_text()
    assert "0.00 → 10.00" in shown
    assert "changed vs live: 1" in "\n".join(report.lines())
