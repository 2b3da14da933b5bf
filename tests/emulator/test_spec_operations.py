"""Every operation of Talon.One's Integration API specification is routed by the emulator.

The list below was generated once from the specification's ``paths`` (Talon.One's published
OpenAPI 3.1 document of the Integration API, 39 operations), in its order: operation ID, method,
path template. Regenerate it when the specification gains operations; the test then shows which
ones the emulator still lacks.
"""

from __future__ import annotations

import re

import aiohttp
import pytest

from talon_one_emulator.app import create_app
from talon_one_emulator.config import EmulatorConfig
from talon_one_emulator.server import serve
from tests.emulator.support import HTTP_KEY

SPEC_OPERATIONS = [
    ("updateCustomerSessionV2", "PUT", "/v2/customer_sessions/{customerSessionId}"),
    ("getCustomerSession", "GET", "/v2/customer_sessions/{customerSessionId}"),
    ("returnCartItems", "POST", "/v2/customer_sessions/{customerSessionId}/returns"),
    ("reopenCustomerSession", "PUT", "/v2/customer_sessions/{customerSessionId}/reopen"),
    ("updateCustomerProfileV2", "PUT", "/v2/customer_profiles/{integrationId}"),
    ("updateCustomerProfilesV2", "PUT", "/v2/customer_profiles"),
    ("createAudienceV2", "POST", "/v2/audiences"),
    ("deleteAudienceV2", "DELETE", "/v2/audiences/{audienceId}"),
    ("updateAudienceV2", "PUT", "/v2/audiences/{audienceId}"),
    ("deleteAudienceMembershipsV2", "DELETE", "/v2/audiences/{audienceId}/memberships"),
    ("updateCustomerProfileAudiences", "POST", "/v2/customer_audiences"),
    ("updateAudienceCustomersAttributes", "PUT", "/v2/audience_customers/{audienceId}/attributes"),
    (
        "linkLoyaltyCardToProfile",
        "POST",
        "/v2/loyalty_programs/{loyaltyProgramId}/cards/{loyaltyCardId}/link_profile",
    ),
    (
        "unlinkLoyaltyCardFromProfile",
        "POST",
        "/v2/loyalty_programs/{loyaltyProgramId}/cards/{loyaltyCardId}/unlink_profile",
    ),
    ("integrationGetAllCampaigns", "GET", "/v1/integration/campaigns"),
    ("trackEventV2", "POST", "/v2/events"),
    ("createReferral", "POST", "/v1/referrals"),
    ("createReferralsForMultipleAdvocates", "POST", "/v1/referrals_for_multiple_advocates"),
    ("deleteCustomerData", "DELETE", "/v1/customer_data/{integrationId}"),
    ("createCouponReservation", "POST", "/v1/coupon_reservations/{couponValue}"),
    ("deleteCouponReservation", "DELETE", "/v1/coupon_reservations/{couponValue}"),
    ("getReservedCustomers", "GET", "/v1/coupon_reservations/customerprofiles/{couponValue}"),
    ("getCustomerInventory", "GET", "/v1/customer_profiles/{integrationId}/inventory"),
    ("getCustomerAchievements", "GET", "/v1/customer_profiles/{integrationId}/achievements"),
    (
        "getCustomerAchievementHistory",
        "GET",
        "/v1/customer_profiles/{integrationId}/achievements/{achievementId}",
    ),
    (
        "getLoyaltyCardBalances",
        "GET",
        "/v1/loyalty_programs/{loyaltyProgramId}/cards/{loyaltyCardId}/balances",
    ),
    (
        "getLoyaltyBalances",
        "GET",
        "/v1/loyalty_programs/{loyaltyProgramId}/profile/{integrationId}/balances",
    ),
    (
        "getLoyaltyCardTransactions",
        "GET",
        "/v1/loyalty_programs/{loyaltyProgramId}/cards/{loyaltyCardId}/transactions",
    ),
    (
        "getLoyaltyProgramProfileTransactions",
        "GET",
        "/v1/loyalty_programs/{loyaltyProgramId}/profile/{integrationId}/transactions",
    ),
    (
        "deleteLoyaltyTransactionsFromLedgers",
        "POST",
        "/v1/loyalty_programs/{loyaltyProgramId}/profile/{integrationId}/delete_transactions",
    ),
    (
        "joinLoyaltyProgram",
        "POST",
        "/v1/loyalty_programs/{loyaltyProgramId}/profile/{integrationId}/join",
    ),
    (
        "getLoyaltyCardPoints",
        "GET",
        "/v1/loyalty_programs/{loyaltyProgramId}/cards/{loyaltyCardId}/points",
    ),
    (
        "getLoyaltyProgramProfilePoints",
        "GET",
        "/v1/loyalty_programs/{loyaltyProgramId}/profile/{integrationId}/points",
    ),
    ("activateLoyaltyPoints", "POST", "/v1/loyalty_programs/{loyaltyProgramId}/activate_points"),
    ("generateLoyaltyCard", "POST", "/v1/loyalty_programs/{loyaltyProgramId}/cards"),
    ("bestPriorPrice", "POST", "/v1/best_prior_price"),
    ("syncCatalog", "PUT", "/v1/catalogs/{catalogId}/sync"),
    ("trackEventV3", "POST", "/v3/events"),
    ("getEventV3", "GET", "/v3/events/{integrationId}"),
]

# A value for each path parameter; any value does, the operation need not succeed.
PARAMETERS = {
    "customerSessionId": "session-1",
    "integrationId": "profile-1",
    "audienceId": "1",
    "loyaltyProgramId": "1",
    "loyaltyCardId": "CARD-0001",
    "couponValue": "xmas20",
    "achievementId": "1",
    "catalogId": "1",
}


def test_the_list_is_complete_and_unique() -> None:
    names = [name for name, _, _ in SPEC_OPERATIONS]
    assert len(names) == len(set(names)) == 39
    routes = [(method, path) for _, method, path in SPEC_OPERATIONS]
    assert len(routes) == len(set(routes))


async def test_every_specified_operation_is_routed() -> None:
    app = create_app(EmulatorConfig(api_keys=[HTTP_KEY]))
    headers = {"Authorization": f"ApiKey-v1 {HTTP_KEY}"}
    routed: dict[str, str | None] = {}
    async with serve(app) as port, aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
        for name, method, template in SPEC_OPERATIONS:
            path = re.sub(r"\{(\w+)\}", lambda match: PARAMETERS[match[1]], template)
            body: dict[str, object] | None = None if method == "GET" else {}
            async with client.request(method, path, json=body, headers=headers) as answer:
                await answer.read()
            routed[name] = app.state.request_log.entries()[-1]["operation"]

    assert routed == {name: name for name, _, _ in SPEC_OPERATIONS}


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v3/events"), ("PUT", "/v3/events/x"), ("GET", "/v1/integration/campaigns/1")],
)
async def test_paths_outside_the_specification_are_not_found(method: str, path: str) -> None:
    app = create_app(EmulatorConfig(api_keys=[HTTP_KEY]))
    headers = {"Authorization": f"ApiKey-v1 {HTTP_KEY}"}
    async with serve(app) as port, aiohttp.ClientSession(f"http://127.0.0.1:{port}") as client:
        answer = await client.request(method, path, headers=headers)
        assert answer.status == 404
        assert (await answer.json())["StatusCode"] == 404
    assert app.state.request_log.entries()[-1]["operation"] is None
