"""Loyalty, loyalty cards and the remaining profile operations, driven by the official Python SDK.

Every SDK call deserialises the response into the SDK's pydantic models (which raise on a missing
required field, a wrong type or a bad enum), and every effect's ``props`` is parsed with the
matching ``*EffectProps`` model, so a passing call proves the shape; the asserts check the values.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import talon_one as t
from talon_one.exceptions import BadRequestException, NotFoundException

from talon_one_emulator import EmulatorConfig, EmulatorServer, parse_campaigns
from tests.emulator.conformance.conftest import effects_of, new_id
from tests.emulator.support import rule

KEY = "loyalty-key"

SHIRT = {"name": "Shirt", "sku": "shirt", "quantity": 1, "price": 40}

CAMPAIGNS = {
    "attributes": {"CustomerSession": {"pay": "boolean"}},
    "loyaltyPrograms": [
        {
            "id": 1,
            "name": "points",
            "title": "Points",
            "subledgers": ["bonus"],
            "tiers": [{"name": "Silver", "minPoints": 100}, {"name": "Gold", "minPoints": 1000}],
        },
        {
            "id": 2,
            "name": "on_action",
            "title": "On action",
            "activateOnAction": True,
            "validityDays": 30,
        },
        {"id": 3, "name": "later", "title": "Later", "pendingDays": 7, "validityDays": 90},
        {
            "id": 4,
            "name": "card",
            "title": "Card",
            "cardBased": True,
            "usersPerCardLimit": 2,
            "cards": [{"identifier": "CARD-0001"}],
        },
    ],
    "campaigns": [
        {
            "id": 1,
            "name": "Earn",
            "rulesetId": 11,
            "rules": [
                rule(
                    "1 point per unit",
                    [
                        {"addLoyaltyPoints": {"programId": 1, "pointsPerCurrencyUnit": 1}},
                        {"addLoyaltyPoints": {"programId": 1, "subLedgerId": "bonus", "points": 5}},
                        {"addLoyaltyPoints": {"programId": 2, "points": 20}},
                        {"addLoyaltyPoints": {"programId": 3, "points": 10}},
                        {"addLoyaltyPoints": {"programId": 4, "pointsPerCurrencyUnit": 2}},
                    ],
                )
            ],
        },
        {
            "id": 2,
            "name": "Pay with points",
            "rulesetId": 21,
            "rules": [
                rule(
                    "5 off for 50 points",
                    [
                        {"deductLoyaltyPoints": {"programId": 1, "points": 50}},
                        {"setDiscount": {"name": "5 off", "amount": 5}},
                    ],
                    [{"sessionAttributeEquals": {"attribute": "pay", "value": True}}],
                )
            ],
        },
    ],
    "achievements": [
        {
            "id": 7,
            "name": "threeOrders",
            "title": "Three orders",
            "description": "Order three times.",
            "campaignId": 1,
            "target": 3,
        }
    ],
}


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(api_keys=[KEY], campaigns=parse_campaigns(CAMPAIGNS))
    with EmulatorServer(config) as running:
        yield running


def update(
    api: t.IntegrationApi,
    session_id: str,
    profile_id: str,
    state: str = "open",
    *,
    items: int = 1,
    cards: list[str] | None = None,
    attributes: dict[str, Any] | None = None,
) -> t.IntegrationStateV2:
    session = t.NewCustomerSessionV2(
        profile_id=profile_id,
        state=state,
        cart_items=[t.CartItem.from_dict({**SHIRT, "quantity": items})],
        loyalty_cards=cards,
        attributes=attributes,
    )
    request = t.IntegrationRequest(
        customer_session=session, response_content=["loyalty", "customerProfile"]
    )
    return api.update_customer_session_v2(session_id, request)


def program_ledger(state: t.IntegrationStateV2, program: str = "1") -> t.LedgerInfo:
    assert state.loyalty is not None
    return state.loyalty.programs[program].ledger


# --- points of a session ----------------------------------------------------------------------


def test_points_are_tentative_then_persisted_then_rolled_back(api: t.IntegrationApi) -> None:
    session_id, profile_id = new_id("sess"), new_id("cust")

    opened = update(api, session_id, profile_id)

    [added] = effects_of(opened.effects, "addLoyaltyPoints", 1)[:1]
    assert (added.value, added.recipient_integration_id, added.sub_ledger_id) == (
        40,
        profile_id,
        "",
    )
    ledger = program_ledger(opened)
    assert (ledger.current_balance, ledger.tentative_current_balance) == (0, 40)
    assert opened.loyalty is not None
    bonus = opened.loyalty.programs["1"].sub_ledgers
    assert bonus is not None
    assert bonus["bonus"].tentative_current_balance == 5

    closed = update(api, session_id, profile_id, "closed")

    assert program_ledger(closed).current_balance == 40
    balances = api.get_loyalty_balances(1, profile_id)
    assert isinstance(balances, t.LoyaltyBalancesWithTiers)
    assert balances.balance is not None
    assert balances.balance.active_points == 40
    assert balances.subledger_balances is not None
    assert balances.subledger_balances["bonus"].active_points == 5
    log = api.get_loyalty_program_profile_transactions(1, profile_id)
    assert isinstance(log, t.GetLoyaltyProgramProfileTransactions200Response)
    assert log.has_more is False
    assert sorted((e.type, e.amount, e.subledger_id) for e in log.data) == [
        ("addition", 5, "bonus"),
        ("addition", 40, ""),
    ]
    main = next(e for e in log.data if e.subledger_id == "")
    assert main.transaction_uuid == added.transaction_uuid
    assert (main.customer_session_id, main.start_date, main.expiry_date) == (
        session_id,
        "immediate",
        "unlimited",
    )
    unspent = api.get_loyalty_program_profile_points(1, profile_id, subledger_id="")
    assert isinstance(unspent, t.GetLoyaltyProgramProfilePoints200Response)
    assert [p.amount for p in unspent.data] == [40]

    cancelled = update(api, session_id, profile_id, "cancelled")

    rollbacks = effects_of(cancelled.effects, "rollbackAddedLoyaltyPoints", 1)
    assert sorted(r.value for r in rollbacks) == [5, 40]
    assert program_ledger(cancelled).current_balance == 0
    after = api.get_loyalty_balances(1, profile_id)
    assert after.balance is not None
    assert after.balance.active_points == 0


def test_deducting_points(api: t.IntegrationApi) -> None:
    profile_id = new_id("cust")
    refused = update(api, new_id("sess"), profile_id, attributes={"pay": True})
    assert effects_of(refused.effects, "deductLoyaltyPoints") == []
    update(api, new_id("sess"), profile_id, "closed", items=3)  # 120 points
    paying_id = new_id("sess")

    paying = update(api, paying_id, profile_id, attributes={"pay": True})

    [deduct] = effects_of(paying.effects, "deductLoyaltyPoints")
    assert (deduct.value, deduct.program_id, deduct.rule_title) == (50, 1, "5 off for 50 points")
    assert [d.value for d in effects_of(paying.effects, "setDiscount")] == [5]
    ledger = program_ledger(paying)
    assert (ledger.current_balance, ledger.tentative_current_balance) == (120, 110)

    update(api, paying_id, profile_id, "closed", attributes={"pay": True})
    balances = api.get_loyalty_balances(1, profile_id)
    assert balances.balance is not None
    assert (balances.balance.active_points, balances.balance.spent_points) == (110, 50)

    cancelled = update(api, paying_id, profile_id, "cancelled")
    [refund] = effects_of(cancelled.effects, "rollbackDeductedLoyaltyPoints")
    assert (refund.value, refund.recipient_integration_id) == (50, profile_id)
    balances = api.get_loyalty_balances(1, profile_id)
    assert balances.balance is not None
    assert balances.balance.active_points == 120


def test_tiers(api: t.IntegrationApi) -> None:
    profile_id = new_id("cust")

    closed = update(api, new_id("sess"), profile_id, "closed", items=3)

    [change] = effects_of(closed.effects, "changeLoyaltyTierLevel")
    assert (change.new_tier_name, change.previous_tier_name) == ("Silver", None)
    ledger = program_ledger(closed)
    assert ledger.current_tier is not None
    assert (ledger.current_tier.name, ledger.points_to_next_tier) == ("Silver", 880)
    balances = api.get_loyalty_balances(
        1, profile_id, include_tiers=True, include_projected_tier=True
    )
    assert balances.balance is not None
    assert balances.balance.current_tier is not None
    assert balances.balance.current_tier.name == "Silver"
    assert balances.balance.next_tier_name == "Gold"
    assert balances.balance.projected_tier is not None
    assert balances.balance.projected_tier.projected_active_points == 120


def test_pending_points_and_activation(api: t.IntegrationApi) -> None:
    session_id, profile_id = new_id("sess"), new_id("cust")

    closed = update(api, session_id, profile_id, "closed")

    [on_action] = effects_of(closed.effects, "addLoyaltyPoints", 2)
    assert (on_action.awaits_activation, on_action.validity_duration) == (True, "30D")
    [later] = effects_of(closed.effects, "addLoyaltyPoints", 3)
    assert later.start_date is not None
    assert later.start_date - datetime.now(UTC) > timedelta(days=6)
    assert later.expiry_date - later.start_date == timedelta(days=90)
    pending = program_ledger(closed, "3")
    assert (pending.pending_balance, pending.current_balance) == (10, 0)
    waiting = api.get_loyalty_program_profile_transactions(2, profile_id, awaits_activation=True)
    assert [(e.start_date, e.validity_duration) for e in waiting.data] == [("on_action", "30D")]
    with pytest.raises(BadRequestException) as caught:
        api.get_loyalty_program_profile_transactions(2, profile_id, awaits_activation=False)
    assert isinstance(caught.value.data, t.ErrorResponseWithStatus)
    assert caught.value.data.status_code == 400

    answer = api.activate_loyalty_points(2, t.ActivateLoyaltyPoints(session_id=session_id))

    assert isinstance(answer, t.ActivateLoyaltyPointsResponse)
    assert answer.ledger_entries is not None
    [entry] = answer.ledger_entries
    assert (entry.amount, entry.customer_profile_id, entry.type) == (20, profile_id, "addition")
    assert entry.expiry_date is not None
    balances = api.get_loyalty_balances(2, profile_id)
    assert balances.balance is not None
    assert balances.balance.active_points == 20
    points = api.get_loyalty_program_profile_points(3, profile_id, status="pending")
    assert [p.amount for p in points.data] == [10]
    with pytest.raises(NotFoundException):
        api.activate_loyalty_points(2, t.ActivateLoyaltyPoints(session_id=new_id("none")))


def test_delete_transactions_and_paging(api: t.IntegrationApi) -> None:
    profile_id = new_id("cust")
    for _ in range(3):
        update(api, new_id("sess"), profile_id, "closed")

    first = api.get_loyalty_program_profile_transactions(1, profile_id, page_size=2)
    rest = api.get_loyalty_program_profile_transactions(1, profile_id, page_size=2, skip=4)
    assert (first.has_more, len(first.data)) == (True, 2)
    assert (rest.has_more, len(rest.data)) == (False, 2)

    request = t.DeleteLoyaltyTransactionsRequest(
        scope="SelectedSubledgers", subledger_ids=["bonus"]
    )
    assert api.delete_loyalty_transactions_from_ledgers(1, profile_id, request) is None

    balances = api.get_loyalty_balances(1, profile_id)
    assert balances.balance is not None
    assert balances.balance.active_points == 120
    assert balances.subledger_balances is not None
    assert balances.subledger_balances["bonus"].active_points == 0
    request = t.DeleteLoyaltyTransactionsRequest(scope="AllSubledgers")
    api.delete_loyalty_transactions_from_ledgers(1, profile_id, request)
    assert api.get_loyalty_program_profile_transactions(1, profile_id).data == []


def test_unknown_program_profile_and_card(api: t.IntegrationApi) -> None:
    profile_id = new_id("cust")
    update(api, new_id("sess"), profile_id)

    for call in (
        lambda: api.get_loyalty_balances(99, profile_id),
        lambda: api.get_loyalty_program_profile_points(1, new_id("nobody")),
        lambda: api.get_loyalty_card_balances(4, "NO-SUCH-CARD"),
        lambda: api.delete_customer_data(new_id("nobody")),
        lambda: api.get_customer_inventory(new_id("nobody"), profile=True),
    ):
        with pytest.raises(NotFoundException) as caught:
            call()
        assert isinstance(caught.value.data, t.ErrorResponseWithStatus)
        assert caught.value.data.status_code == 404


# --- cards --------------------------------------------------------------------------------------


def test_cards_generate_link_earn_and_unlink(api: t.IntegrationApi) -> None:
    profile_id = new_id("cust")
    update(api, new_id("sess"), profile_id)

    card = api.generate_loyalty_card(4, t.GenerateLoyaltyCard(customer_profile_ids=[profile_id]))

    assert isinstance(card, t.LoyaltyCard)
    assert (card.program_id, card.status, card.users_per_card_limit) == (4, "active", 2)
    assert card.profiles is not None
    assert [p.integration_id for p in card.profiles] == [profile_id]
    identifier = card.identifier
    other = new_id("cust")
    update(api, new_id("sess"), other)
    linked = api.link_loyalty_card_to_profile(
        4, identifier, t.LoyaltyCardRegistration(integration_id=other)
    )
    assert linked.profiles is not None
    assert [p.integration_id for p in linked.profiles] == [profile_id, other]

    session_id = new_id("sess")
    opened = update(api, session_id, profile_id, cards=[identifier])
    [earned] = effects_of(opened.effects, "addLoyaltyPoints", 4)
    assert (earned.card_identifier, earned.value) == (identifier, 80)
    assert opened.loyalty is not None
    assert opened.loyalty.cards is not None
    [shown] = opened.loyalty.cards
    assert shown.ledger is not None
    assert (shown.ledger.current_balance, shown.ledger.tentative_current_balance) == (0, 80)
    update(api, session_id, profile_id, "closed", cards=[identifier])

    balances = api.get_loyalty_card_balances(4, identifier)
    assert isinstance(balances, t.LoyaltyCardBalances)
    assert balances.balance is not None
    assert balances.balance.active_points == 80
    assert balances.profiles is not None
    assert len(balances.profiles) == 2
    log = api.get_loyalty_card_transactions(4, identifier)
    assert isinstance(log, t.GetLoyaltyCardTransactions200Response)
    assert [(e.card_identifier, e.amount, e.type) for e in log.data] == [
        (identifier, 80, "addition")
    ]
    points = api.get_loyalty_card_points(4, identifier)
    assert isinstance(points, t.GetLoyaltyCardPoints200Response)
    assert [(p.amount, p.customer_profile_id) for p in points.data] == [(80, profile_id)]

    unlinked = api.unlink_loyalty_card_from_profile(
        4, identifier, t.LoyaltyCardRegistration(integration_id=other)
    )
    assert unlinked.profiles is not None
    assert [p.integration_id for p in unlinked.profiles] == [profile_id]
    with pytest.raises(BadRequestException):
        api.unlink_loyalty_card_from_profile(
            4, identifier, t.LoyaltyCardRegistration(integration_id=other)
        )


def test_generate_card_with_identifier(api: t.IntegrationApi) -> None:
    identifier = f"CARD-{uuid.uuid4().hex[:8]}"

    card = api.generate_loyalty_card(
        4, t.GenerateLoyaltyCard(card_identifier=identifier, status="inactive")
    )

    assert (card.identifier, card.status) == (identifier, "inactive")
    with pytest.raises(BadRequestException):
        api.generate_loyalty_card(4, t.GenerateLoyaltyCard(card_identifier=identifier))
    with pytest.raises(BadRequestException):
        api.generate_loyalty_card(1, t.GenerateLoyaltyCard())  # profile-based program


# --- profiles -----------------------------------------------------------------------------------


def test_bulk_profiles_silent_yes_and_no(api: t.IntegrationApi) -> None:
    ids = [new_id("bulk") for _ in range(2)]
    request = t.MultipleCustomerProfileIntegrationRequest(
        customer_profiles=[
            t.MultipleCustomerProfileIntegrationRequestItem(integration_id=integration_id)
            for integration_id in ids
        ]
    )

    assert api.update_customer_profiles_v2(request) is None
    assert api.update_customer_profiles_v2(request, silent="yes") is None
    answer = api.update_customer_profiles_v2(request, silent="no")

    assert isinstance(answer, t.MultipleCustomerProfileIntegrationResponseV2)
    assert answer.integration_states is not None
    assert [s.customer_profile.integration_id for s in answer.integration_states] == ids


def test_bulk_profiles_refused_entry_by_entry(api: t.IntegrationApi) -> None:
    ids = [new_id("bulk") for _ in range(3)]
    items = [
        t.MultipleCustomerProfileIntegrationRequestItem(integration_id=ids[0], attributes={}),
        t.MultipleCustomerProfileIntegrationRequestItem(
            integration_id=ids[1], attributes={"pet": "cat"}
        ),
        t.MultipleCustomerProfileIntegrationRequestItem(
            integration_id=ids[2], attributes={"shoeSize": 42}
        ),
    ]
    request = t.MultipleCustomerProfileIntegrationRequest(customer_profiles=items)

    with pytest.raises(BadRequestException) as caught:
        api.update_customer_profiles_v2(request, silent="no")

    # The SDK reads the 400 as ErrorResponseWithStatus: one error per bad attribute, each
    # pointing at its entry; nothing of the request is applied.
    assert caught.value.status == 400
    assert isinstance(caught.value.data, t.ErrorResponseWithStatus)
    errors = caught.value.data.errors or []
    assert [(e.title, e.source.pointer) for e in errors] == [
        ("Unknown", "/customerProfiles/1/attributes/pet"),
        ("Unknown", "/customerProfiles/2/attributes/shoeSize"),
    ]
    with pytest.raises(NotFoundException):
        api.get_customer_inventory(ids[0], profile=True)


def test_delete_customer_data(api: t.IntegrationApi) -> None:
    profile_id = new_id("cust")
    api.update_customer_profiles_v2(
        t.MultipleCustomerProfileIntegrationRequest(
            customer_profiles=[
                t.MultipleCustomerProfileIntegrationRequestItem(integration_id=profile_id)
            ]
        )
    )

    assert api.delete_customer_data(profile_id) is None

    inventory = api.get_customer_inventory(profile_id, profile=True)
    assert inventory.profile is not None
    assert inventory.profile.attributes == {}


def test_inventory_with_each_flag(api: t.IntegrationApi) -> None:
    profile_id = new_id("cust")
    update(api, new_id("sess"), profile_id, "closed")
    card = api.generate_loyalty_card(4, t.GenerateLoyaltyCard(customer_profile_ids=[profile_id]))

    empty = api.get_customer_inventory(profile_id)
    assert isinstance(empty, t.CustomerInventory)
    assert empty.to_dict() == {}
    profile = api.get_customer_inventory(profile_id, profile=True).profile
    assert profile is not None
    assert (profile.integration_id, profile.closed_sessions) == (profile_id, 1)
    loyalty = api.get_customer_inventory(profile_id, loyalty=True).loyalty
    assert loyalty is not None
    assert loyalty.programs["1"].ledger.current_balance == 40
    assert loyalty.cards is not None
    assert [c.identifier for c in loyalty.cards] == [card.identifier]
    assert api.get_customer_inventory(profile_id, referrals=True).referrals == []
    assert api.get_customer_inventory(profile_id, coupons=True).coupons == []
    assert api.get_customer_inventory(profile_id, giveaways=True).giveaways == []
    achievements = api.get_customer_inventory(profile_id, achievements=True).achievements
    assert achievements is not None
    [achievement] = achievements
    assert (achievement.achievement_id, achievement.status, achievement.progress) == (
        7,
        "not_started",
        0,
    )
    everything = api.get_customer_inventory(
        profile_id,
        profile=True,
        referrals=True,
        coupons=True,
        loyalty=True,
        giveaways=True,
        achievements=True,
    )
    assert set(everything.to_dict()) == {
        "profile",
        "referrals",
        "coupons",
        "loyalty",
        "giveaways",
        "achievements",
    }


def test_achievements(api: t.IntegrationApi) -> None:
    profile_id = new_id("cust")
    update(api, new_id("sess"), profile_id)

    listed = api.get_customer_achievements(profile_id, campaign_ids=["1"], page_size=10)

    assert isinstance(listed, t.GetCustomerAchievements200Response)
    [entry] = listed.data
    assert (entry.id, entry.name, entry.status, entry.target) == (7, "threeOrders", "active", 3)
    assert entry.current_progress is not None
    assert entry.current_progress.status == "not_started"
    assert api.get_customer_achievements(profile_id, campaign_ids=["2"]).data == []
    history = api.get_customer_achievement_history(profile_id, 7)
    assert isinstance(history, t.GetCustomerAchievementHistory200Response)
    assert (history.total_result_size, history.data) == (0, [])
    with pytest.raises(NotFoundException):
        api.get_customer_achievement_history(profile_id, 8)
    with pytest.raises(NotFoundException):
        api.get_customer_achievements(new_id("nobody"))
