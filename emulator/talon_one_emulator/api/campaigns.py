"""integrationGetAllCampaigns without HTTP: the running campaigns of the Application.

Running means enabled in the campaign file (campaign schedules are not emulated), listed in the
file's order, paged with ``pageSize`` (default 50) and ``skip``. The file gives campaigns no
start or end time, linked stores or linked audiences, so the date, ``storeId`` and
``audienceId`` filters match no campaign (a missing value does not start, end or link "after"
or "before" anything).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from talon_one_emulator.api.queries import Page
from talon_one_emulator.render.responses import integration_campaign_json

if TYPE_CHECKING:
    from talon_one_emulator.campaigns.file import CampaignSpec
    from talon_one_emulator.store.state import EmulatorState

__all__ = ["CampaignFilter", "CampaignService"]

Body = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CampaignFilter:
    """The query of integrationGetAllCampaigns."""

    page: Page
    campaign_ids: tuple[str, ...] | None = None
    """Compared with the campaign IDs as text (the specification types them as strings)."""
    start_after: datetime | None = None
    start_before: datetime | None = None
    end_after: datetime | None = None
    end_before: datetime | None = None
    store_id: int | None = None
    audience_id: int | None = None

    def matches(self, campaign: CampaignSpec) -> bool:
        if self.campaign_ids is not None and str(campaign.id) not in self.campaign_ids:
            return False
        # No campaign of the file has a schedule, a linked store or a linked audience.
        unmatched = (
            self.start_after,
            self.start_before,
            self.end_after,
            self.end_before,
            self.store_id,
            self.audience_id,
        )
        return all(value is None for value in unmatched)


class CampaignService:
    """The campaign list over one :class:`~talon_one_emulator.store.state.EmulatorState`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    def list_campaigns(self, query: CampaignFilter) -> Body:
        """integrationGetAllCampaigns: ``{hasMore, data: [IntegrationCampaign]}``."""
        state = self.state
        found = [
            campaign
            for campaign in state.campaigns.campaigns
            if campaign.enabled and query.matches(campaign)
        ]
        page = query.page
        return {
            "hasMore": page.has_more(len(found)),
            "data": [
                integration_campaign_json(state, campaign)
                for campaign in found[page.skip : page.skip + page.size]
            ],
        }
