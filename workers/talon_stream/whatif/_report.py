"""What a what-if found: per-campaign totals of both sides (:class:`CampaignTotals`), the run's
counts (:class:`WhatIfReport`), and how they are shown — a terminal table, the per-campaign CSV
file and, optionally, a CSV row per evaluated event (:class:`EventsCsv`).

A campaign's totals add up, over the evaluated events (those Talon.One answered), the effects
of that campaign on each side:

* ``triggered``: events with at least one effect of the campaign other than a rejection
  (``rejectCoupon``, ``rejectReferral``);
* ``discount``: the ``value`` of its ``setDiscount*`` effects (``setDiscount``,
  ``setDiscountPerItem``, ``setDiscountPerAdditionalCost``, …), and ``discount_on_orders`` the
  same on ``order.placed`` events only — a session update answers with the session's whole
  current discount, so the first sums every cart's, the second what orders got;
* ``coupons_accepted``, ``coupons_rejected``: ``acceptCoupon`` and ``rejectCoupon`` effects;
* ``points_added`` (and ``points_added_on_orders``), ``points_deducted``: the ``value`` of
  ``addLoyaltyPoints`` and ``deductLoyaltyPoints``.
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from rich.table import Table

from talon_stream.whatif._diff import Effect, EventDiff

__all__ = ["MEASURES", "CampaignTotals", "EventsCsv", "WhatIfReport", "tally"]

_REJECTIONS = frozenset({"rejectCoupon", "rejectReferral"})


@dataclass(slots=True)
class CampaignTotals:
    """One campaign's totals on one side (see the module)."""

    triggered: int = 0
    discount: float = 0.0
    discount_on_orders: float = 0.0
    coupons_accepted: int = 0
    coupons_rejected: int = 0
    points_added: float = 0.0
    points_added_on_orders: float = 0.0
    points_deducted: float = 0.0

    def add(self, effects: Iterable[Effect], *, closing: bool) -> None:
        """Count the effects of this campaign in one event."""
        triggered = False
        for effect in effects:
            kind = str(effect.get("effectType"))
            value = _value(effect)
            if kind not in _REJECTIONS:
                triggered = True
            if kind.startswith("setDiscount"):
                self.discount += value
                if closing:
                    self.discount_on_orders += value
            elif kind == "acceptCoupon":
                self.coupons_accepted += 1
            elif kind == "rejectCoupon":
                self.coupons_rejected += 1
            elif kind == "addLoyaltyPoints":
                self.points_added += value
                if closing:
                    self.points_added_on_orders += value
            elif kind == "deductLoyaltyPoints":
                self.points_deducted += value
        if triggered:
            self.triggered += 1


#: The measures of :class:`CampaignTotals`, in column order.
MEASURES: tuple[str, ...] = tuple(f.name for f in fields(CampaignTotals))


def _value(effect: Effect) -> float:
    props = effect.get("props")
    value = props.get("value") if isinstance(props, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def tally(totals: dict[int, CampaignTotals], effects: Iterable[Effect], *, closing: bool) -> None:
    """Add one event's ``effects`` to the totals of the campaigns ``totals`` holds."""
    by_campaign: dict[int, list[Effect]] = {}
    for effect in effects:
        campaign = effect.get("campaignId")
        if isinstance(campaign, int) and campaign in totals:
            by_campaign.setdefault(campaign, []).append(effect)
    for campaign, own in by_campaign.items():
        totals[campaign].add(own, closing=closing)


@dataclass(slots=True)
class WhatIfReport:
    """The counts of one run and the per-campaign totals of both sides."""

    run_id: str
    campaigns: tuple[int, ...]
    since: datetime
    until: datetime
    live: dict[int, CampaignTotals] = field(init=False)
    candidate: dict[int, CampaignTotals] = field(init=False)
    #: Records read in the window, and before it (the look-back: state only).
    read: int = 0
    warm_up: int = 0
    #: Events Talon.One answered (the totals' events), and those it refused, by status.
    evaluated: int = 0
    refused: Counter[int] = field(default_factory=Counter)
    #: Events of the window not evaluated, by reason.
    skipped: Counter[str] = field(default_factory=Counter)
    #: Evaluated events with no live envelope, and whose candidate effects differ from live.
    live_missing: int = 0
    changed: int = 0
    #: Dry calls made (every attempt) and how many were retries.
    calls: int = 0
    retries: int = 0
    #: Sessions whose state the run forgot (more than it keeps at once).
    sessions_forgotten: int = 0
    elapsed_s: float = 0.0

    def __post_init__(self) -> None:
        self.campaigns = tuple(sorted(set(self.campaigns)))
        self.live = {campaign: CampaignTotals() for campaign in self.campaigns}
        self.candidate = {campaign: CampaignTotals() for campaign in self.campaigns}

    def add(self, diff: EventDiff) -> None:
        """Count one evaluated event."""
        if diff.error is not None:
            self.refused[diff.status] += 1
            return
        self.evaluated += 1
        tally(self.candidate, diff.candidate, closing=diff.closing)
        if diff.live is None:
            self.live_missing += 1
        else:
            tally(self.live, diff.live.effects, closing=diff.closing)
        if diff.changed:
            self.changed += 1

    def rows(self) -> list[dict[str, Any]]:
        """One row per campaign: its id, the events evaluated, each measure live and candidate."""
        rows = []
        for campaign in self.campaigns:
            row: dict[str, Any] = {"campaign_id": campaign, "events_evaluated": self.evaluated}
            for side, totals in (("live", self.live), ("candidate", self.candidate)):
                for measure in MEASURES:
                    row[f"{side}_{measure}"] = _rounded(getattr(totals[campaign], measure))
            rows.append(row)
        return rows

    def write_csv(self, path: Path) -> None:
        """The per-campaign totals, one row per campaign (:meth:`rows`)."""
        rows = self.rows()
        with path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    def table(self) -> Table:
        """The totals as a terminal table, each cell ``live → candidate``."""
        table = Table(
            title=f"What-if {self.since.isoformat()} → {self.until.isoformat()}: "
            f"{self.evaluated} events evaluated",
            caption="each cell: live → candidate",
        )
        table.add_column("campaign", justify="right")
        for measure in MEASURES:
            table.add_column(measure.replace("_", " "), justify="right")
        for campaign in self.campaigns:
            live, candidate = self.live[campaign], self.candidate[campaign]
            table.add_row(
                str(campaign),
                *(
                    f"{_shown(getattr(live, m))} → {_shown(getattr(candidate, m))}"
                    for m in MEASURES
                ),
            )
        return table

    def lines(self) -> list[str]:
        """The run's counts, as printed under the table."""

        def counts(counter: Counter[Any]) -> str:
            return ", ".join(f"{name} {n}" for name, n in counter.most_common()) or "-"

        rate = self.calls / self.elapsed_s if self.elapsed_s > 0 else 0.0
        forgotten = (
            [
                f"sessions forgotten to stay within the bound: {self.sessions_forgotten} (their "
                "later events were evaluated from what followed only)"
            ]
            if self.sessions_forgotten
            else []
        )
        return [
            f"records read: {self.read} in the window, {self.warm_up} before it (look-back)",
            f"evaluated: {self.evaluated}; refused by Talon.One: {self.refused.total()}"
            + (f" ({counts(self.refused)})" if self.refused else ""),
            f"skipped: {self.skipped.total()}"
            + (f" ({counts(self.skipped)})" if self.skipped else ""),
            f"changed vs live: {self.changed}; no live envelope: {self.live_missing}",
            f"dry calls: {self.calls} ({self.retries} retries) in {self.elapsed_s:.1f} s, "
            f"{rate:.1f}/s",
            *forgotten,
        ]


def _rounded(value: float | int) -> float | int:
    return round(value, 2) if isinstance(value, float) else value


def _shown(value: float | int) -> str:
    return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"


class EventsCsv:
    """A CSV row per evaluated event, written as the run goes (``--events-csv``): where it came
    from, the answer, and both sides' effect counts, discount and points over the evaluated
    campaigns."""

    COLUMNS = (
        "topic",
        "partition",
        "offset",
        "event_id",
        "type",
        "profile_id",
        "session_id",
        "status",
        "error",
        "live_found",
        "live_status",
        "live_effects",
        "candidate_effects",
        "live_discount",
        "candidate_discount",
        "live_points",
        "candidate_points",
        "changed",
    )

    def __init__(self, file: IO[str]) -> None:
        self._writer = csv.writer(file)
        self._writer.writerow(self.COLUMNS)

    def write(self, diff: EventDiff) -> None:
        live = diff.live
        live_effects = live.effects if live is not None else []
        self._writer.writerow(
            (
                diff.record.topic,
                diff.record.partition,
                diff.record.offset,
                diff.event.event_id,
                diff.event.type,
                diff.call.profile_id or "",
                diff.call.session_id or "",
                diff.status,
                diff.error or "",
                live is not None,
                "" if live is None else live.status,
                len(live_effects),
                len(diff.candidate),
                _rounded(_sum(live_effects, "setDiscount")),
                _rounded(_sum(diff.candidate, "setDiscount")),
                _rounded(_sum(live_effects, "addLoyaltyPoints")),
                _rounded(_sum(diff.candidate, "addLoyaltyPoints")),
                diff.changed,
            )
        )


def _sum(effects: Iterable[Effect], prefix: str) -> float:
    return sum(_value(e) for e in effects if str(e.get("effectType")).startswith(prefix))
