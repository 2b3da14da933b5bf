"""The emulator's state stays bounded: beyond ``max_sessions`` / ``max_profiles`` the
oldest-created session or profile is forgotten with what only it owns, the newest keep working,
and a forgotten one answers like one the emulator has never seen.

Driven through IntegrationService (and the promotion, audience and loyalty services) with the
default campaigns; the CLI options through a real ``talon-stream emulator`` process.
"""

from __future__ import annotations

import gc
import json
import re
import subprocess
import sys
import time
import tracemalloc
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from talon_one_emulator.api.loyalty import LoyaltyService
from talon_one_emulator.api.operations import IntegrationService
from talon_one_emulator.api.profile_data import INVENTORY_FLAGS, ProfileService
from talon_one_emulator.campaigns.file import CampaignSet
from talon_one_emulator.config import EmulatorConfig
from talon_one_emulator.errors import ApiError, ConfigError
from talon_one_emulator.rules.effects import generated_code
from talon_one_emulator.rules.loyalty import transaction_uuid
from talon_one_emulator.store.state import DEFAULT_MAX_PROFILES, DEFAULT_MAX_SESSIONS, EmulatorState
from talon_stream.cli import main
from talon_stream.demo._subprocesses import free_port, terminate
from tests.emulator.support import FakeClock

CAP = 50
BLOUSE = {"name": "Red Spring Blouse", "sku": "rsb002", "quantity": 1, "price": 49}
TROUSERS = {"name": "Denim Trousers", "sku": "dtr003", "quantity": 1, "price": 74}
SHIPPING = {"shipping": {"price": 5}}
ROOT = Path(__file__).resolve().parents[2]


class Shop:
    """The services of one bounded emulator state, and a customer's visit to it."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.api = IntegrationService(state)
        self.loyalty = LoyaltyService(state)
        self.profiles = ProfileService(state)
        self.audience_id = self.api.audiences.create_audience({"name": "Regulars"})["id"]
        # CARD-0002 takes two profiles: one linked every half cap keeps two linked ones live.
        self.link_every = state.max_profiles // 2
        self.referral_codes: dict[int, str] = {}
        """Customer number → the referral code it used (its advocate: the customer before)."""
        self.thank_you_coupons: dict[int, str] = {}
        """Customer number → the coupon created for it as an advocate."""

    def session(self, session_id: str, profile_id: str, state: str, **fields: Any) -> Any:
        body = {"customerSession": {"profileId": profile_id, "state": state, **fields}}
        return self.api.update_customer_session(session_id, body)

    def customer(self, number: int) -> None:
        """Customer ``number``: a coupon (once per customer, reserved, or open to all), every
        7th a referral code, every 5th the Berlin store (a gift card while the pool lasts),
        points earned and spent, a review, an audience, maybe a card link; then its first
        session is returned, cancelled, reopened or left closed."""
        profile_id = f"customer-{number}"
        first = f"s-{number}-a"
        coupon = ("FREESHIP", "xmas20", "RESERVED20")[number % 3]
        fields: dict[str, Any] = {
            "cartItems": [BLOUSE, TROUSERS],
            "additionalCosts": SHIPPING,
            "couponCodes": [coupon],
        }
        if coupon == "RESERVED20":
            self.api.promotions.create_coupon_reservation(
                "RESERVED20", {"integrationIDs": [profile_id]}
            )
        if number % 7 == 0 and number > 0:
            referral = self.api.promotions.create_referral(
                {"campaignId": 9, "advocateProfileIntegrationId": f"customer-{number - 1}"}
            )
            self.referral_codes[number] = fields["referralCode"] = referral["code"]
        if number % 5 == 0:
            fields["storeIntegrationId"] = "store-berlin"
        self.session(first, profile_id, "open", **fields)
        closed = self.session(first, profile_id, "closed")
        for created in closed["createdCoupons"]:
            self.thank_you_coupons[number - 1] = created["value"]
        self.api.update_customer_profile(
            profile_id,
            {
                "attributes": {"tier": "gold"},
                "audiencesChanges": {"adds": [self.audience_id], "deletes": []},
            },
        )
        self.api.track_event(
            {"profileId": profile_id, "type": "review_submitted", "attributes": {"rating": 5}}
        )
        if number % self.link_every == 0:
            self.loyalty.link_card("2", "CARD-0002", {"integrationId": profile_id})
        # Pays with 100 of the points just earned.
        self.session(
            f"s-{number}-b",
            profile_id,
            "closed",
            cartItems=[BLOUSE],
            attributes={"redeemPoints": True},
        )
        match number % 4:
            case 1:
                returned = {"returnedCartItems": [{"position": 0, "quantity": 1}]}
                self.api.return_cart_items(first, {"return": returned})
            case 2:
                self.session(first, profile_id, "cancelled")
            case 3:
                self.api.reopen_customer_session(first)
            case _:
                pass

    def customers(self, numbers: range) -> None:
        for number in numbers:
            self.customer(number)


def _bounded(
    campaigns: CampaignSet, max_sessions: int = CAP, max_profiles: int = CAP
) -> EmulatorState:
    return EmulatorState(
        campaigns, clock=FakeClock(), max_sessions=max_sessions, max_profiles=max_profiles
    )


@pytest.fixture
def shop(campaigns: CampaignSet) -> Shop:
    return Shop(_bounded(campaigns))


def _sizes(state: EmulatorState) -> dict[str, int]:
    """The size of every structure keyed by a session or a profile (private ones included:
    what they hold is what this module is about)."""
    ledger, loyalty = state.ledger, state.loyalty
    return {
        "sessions": len(state.sessions),
        "session order": len(state._session_order),
        "profiles": len(state.profiles),
        "profile order": len(state._profile_order),
        "loyalty accounts": len(loyalty.accounts),
        "transaction index": loyalty.transaction_count,
        "card links": len(loyalty._links),
        "profiles per card": max(
            len(c.profiles) for cs in loyalty.cards.values() for c in cs.values()
        ),
        "coupons": len(ledger.coupons),
        "coupons by code": len(ledger._coupons_by_code),
        "referrals": len(ledger.referrals),
        "referrals by code": len(ledger._referrals_by_code),
        "profiles holding ledger records": len(ledger._held),
        "redemptions per coupon": max(len(c.redemptions) for c in ledger.coupons.values()),
        "reservations per coupon": max(len(c.reservations) for c in ledger.coupons.values()),
        "profile counts per campaign": max(
            max(len(c.profile_coupons), len(c.profile_referrals)) for c in ledger._counters.values()
        ),
        "referred per referral": max(
            (len(r.referred) for r in ledger.referrals.values()), default=0
        ),
        "audience members": max(len(a.members) for a in state.audiences.audiences.values()),
        "giveaway recipients": sum(
            record.profile_integration_id is not None for record in ledger.giveaways[1]
        ),
    }


def _assert_within_caps(state: EmulatorState) -> None:
    sizes = _sizes(state)
    live = set(state.profiles)
    file_coupons = len(state.engine.coupons)
    assert sizes["sessions"] == sizes["session order"] == state.max_sessions
    assert sizes["profiles"] == sizes["profile order"] == state.max_profiles
    assert sizes["loyalty accounts"] <= state.max_profiles  # one profile-based program
    assert sizes["card links"] <= 2  # one card is linked, to two profiles at most
    assert sizes["profiles per card"] <= 2
    assert sizes["coupons"] == sizes["coupons by code"] <= file_coupons + state.max_profiles
    assert sizes["referrals"] == sizes["referrals by code"] <= state.max_profiles
    assert sizes["profiles holding ledger records"] <= state.max_profiles
    # (Anonymous sessions would add one key, "", to the per-profile counts: none here.)
    assert sizes["redemptions per coupon"] <= state.max_profiles
    assert sizes["reservations per coupon"] <= state.max_profiles
    assert sizes["profile counts per campaign"] <= state.max_profiles
    assert sizes["referred per referral"] <= 1
    assert sizes["audience members"] <= state.max_profiles
    assert sizes["giveaway recipients"] <= 10  # the pool
    # Nothing keyed by a forgotten profile remains.
    ledger, loyalty = state.ledger, state.loyalty
    assert {profile for _, profile in loyalty.accounts} <= live
    assert set(loyalty._links) <= live
    assert set(ledger._held) <= live
    for coupon in ledger.coupons.values():
        assert set(coupon.redemptions) | set(coupon.reservations) <= live
        if coupon.info.id > file_coupons:
            assert coupon.info.recipient in live
    for referral in ledger.referrals.values():
        assert referral.info.advocate in live
        assert set(referral.referred) <= live
    for counters in ledger._counters.values():
        assert set(counters.profile_coupons) | set(counters.profile_referrals) <= live
    for audience in state.audiences.audiences.values():
        assert set(audience.members) <= live
    for record in ledger.giveaways[1]:
        assert record.profile_integration_id in live | {None}
    # The UUID index holds the transactions of the live ledgers, no more.
    ledgers = [
        ledger for account in loyalty.accounts.values() for ledger in account.ledgers.values()
    ]
    ledgers += [
        ledger
        for cards in loyalty.cards.values()
        for card in cards.values()
        for ledger in card.account.ledgers.values()
    ]
    assert sizes["transaction index"] <= sum(len(ledger.transactions) for ledger in ledgers)
    # Each customer writes at most 8 transactions (earn, review, earn, spend, rollbacks).
    assert sizes["transaction index"] <= 8 * state.max_profiles


def test_state_stays_within_the_caps(shop: Shop) -> None:
    shop.customers(range(1_500))  # 3,000 sessions, 1,500 profiles
    _assert_within_caps(shop.state)
    # Everything was used on the way: the sizes are not small for want of traffic.
    sizes = _sizes(shop.state)
    assert sizes["coupons"] > len(shop.state.engine.coupons)  # thank-you coupons
    assert sizes["referrals"] > 0
    assert sizes["redemptions per coupon"] > 1
    assert sizes["reservations per coupon"] > 1
    assert sizes["audience members"] == CAP
    assert sizes["transaction index"] > CAP


def test_the_newest_customers_keep_working(shop: Shop) -> None:
    shop.customers(range(1_000))
    api, loyalty, profiles = shop.api, shop.loyalty, shop.profiles
    states = [
        api.get_customer_session(f"s-{number}-a")["customerSession"]["state"]
        for number in range(996, 1_000)
    ]
    assert states == ["closed", "partially_returned", "cancelled", "open"]
    # customer-996: 123 points for its first session, 50 for the review, 49 for the second,
    # 100 of them spent.
    balance = loyalty.get_balances("1", "customer-996")["balance"]
    assert (balance["activePoints"], balance["spentPoints"]) == (122, 100)
    inventory = profiles.get_inventory("customer-996", INVENTORY_FLAGS)
    assert inventory["profile"]["audienceMemberships"] == [
        {"id": shop.audience_id, "name": "Regulars"}
    ]
    assert inventory["profile"]["attributes"] == {"tier": "gold"}
    coupons = {coupon["value"]: coupon for coupon in inventory["coupons"]}
    assert coupons["FREESHIP"]["profileRedemptionCount"] == 1
    # customer-999 reopened its first session (FREESHIP given back); closing redeems it again.
    closed = shop.session("s-999-a", "customer-999", "closed")
    assert "acceptCoupon" in [effect["effectType"] for effect in closed["effects"]]
    coupons = {
        c["value"]: c for c in profiles.get_inventory("customer-999", ["coupons"])["coupons"]
    }
    assert coupons["FREESHIP"]["profileRedemptionCount"] == 1
    # customer-997 returns the rest and cancels.
    returned = {"returnedCartItems": [{"position": 1}]}
    answer = api.return_cart_items("s-997-a", {"return": returned})
    assert answer["return"]["returnedCartItems"] == [
        {"position": 1, "quantity": 1, "sku": "dtr003"}
    ]
    shop.session("s-997-a", "customer-997", "cancelled")
    assert api.get_customer_session("s-997-a")["customerSession"]["state"] == "cancelled"
    # The last card link, referral and thank-you coupon of live customers are all there.
    cards = profiles.get_inventory("customer-975", ["loyalty"])["loyalty"]["cards"]
    assert [card["identifier"] for card in cards] == ["CARD-0002"]
    advocate = profiles.get_inventory("customer-993", ["referrals", "coupons"])
    assert [referral["code"] for referral in advocate["referrals"]] == [shop.referral_codes[994]]
    assert shop.thank_you_coupons[993] in [coupon["value"] for coupon in advocate["coupons"]]
    reserved = api.promotions.get_reserved_customers("RESERVED20")["data"]
    assert "customer-998" in [profile["integrationId"] for profile in reserved]


def _answer(call: Callable[[str], object], integration_id: str) -> tuple[type[ApiError], str]:
    """The error ``call(integration_id)`` raises, with the ID taken out of its body."""
    with pytest.raises(ApiError) as raised:
        call(integration_id)
    return type(raised.value), json.dumps(raised.value.body()).replace(integration_id, "<ID>")


def _effects(shop: Shop, session_id: str, code: str, **fields: Any) -> str:
    """The effects of a new anonymous session's evaluation, with the code taken out."""
    body = {"customerSession": {"state": "open", "cartItems": [BLOUSE], **fields}}
    answer = shop.api.update_customer_session(session_id, body)
    return json.dumps(answer["effects"]).replace(code, "<CODE>")


def test_a_forgotten_customer_answers_like_an_unknown_one(shop: Shop) -> None:
    shop.customers(range(200))
    api, loyalty, profiles = shop.api, shop.loyalty, shop.profiles
    assert "s-6-a" not in shop.state.sessions
    assert "customer-6" not in shop.state.profiles
    unknown_session, unknown_profile = "never-seen-session", "never-seen-profile"
    no_returns: dict[str, Any] = {"return": {"returnedCartItems": []}}
    calls: list[tuple[Callable[[str], object], str, str]] = [
        (api.get_customer_session, "s-6-a", unknown_session),
        (api.reopen_customer_session, "s-6-b", unknown_session),
        (lambda sid: api.return_cart_items(sid, no_returns), "s-6-a", unknown_session),
        (lambda pid: loyalty.get_balances("1", pid), "customer-6", unknown_profile),
        (
            lambda pid: profiles.get_inventory(pid, INVENTORY_FLAGS),
            "customer-6",
            unknown_profile,
        ),
        (
            lambda pid: loyalty.link_card("2", "CARD-0001", {"integrationId": pid}),
            "customer-6",
            unknown_profile,
        ),
    ]
    for call, forgotten, unknown in calls:
        assert _answer(call, forgotten) == _answer(call, unknown)
    # The referral code customer-6 advocated, and the coupon it earned, are unknown codes now.
    referral = shop.referral_codes[7]
    assert _effects(shop, "x-1", referral, referralCode=referral) == _effects(
        shop, "x-2", "NO-SUCH-CODE", referralCode="NO-SUCH-CODE"
    )
    coupon = shop.thank_you_coupons[6]
    assert _effects(shop, "x-3", coupon, couponCodes=[coupon]) == _effects(
        shop, "x-4", "NO-SUCH-COUPON", couponCodes=["NO-SUCH-COUPON"]
    )
    reserved = api.promotions.get_reserved_customers("RESERVED20")["data"]
    assert "customer-8" not in [profile["integrationId"] for profile in reserved]


def test_a_forgotten_customer_comes_back_new(shop: Shop) -> None:
    shop.customers(range(200))
    # customer-3 had closed a session with FREESHIP (once per customer) and earned points.
    assert "customer-3" not in shop.state.profiles
    shop.session("s-3-a", "customer-3", "open", cartItems=[BLOUSE, TROUSERS])
    created = shop.api.get_customer_session("s-3-a")["customerSession"]
    assert created["firstSession"] is True
    profile = shop.state.profiles["customer-3"]
    assert (profile.closed_sessions, profile.total_sales, profile.points) == (0, 0.0, {})
    assert shop.loyalty.get_balances("1", "customer-3")["balance"]["activePoints"] == 0
    inventory = shop.profiles.get_inventory("customer-3", INVENTORY_FLAGS)
    assert (inventory["coupons"], inventory["referrals"], inventory["giveaways"]) == ([], [], [])
    assert inventory["profile"]["audienceMemberships"] == []
    assert inventory["loyalty"].get("cards", []) == []
    # The once-per-customer coupon is accepted again.
    closed = shop.session(
        "s-3-c",
        "customer-3",
        "closed",
        cartItems=[BLOUSE, TROUSERS],
        couponCodes=["FREESHIP"],
        additionalCosts=SHIPPING,
    )
    assert "acceptCoupon" in [effect["effectType"] for effect in closed["effects"]]


def test_a_session_that_outlives_its_profile_leaves_the_new_one_alone(
    campaigns: CampaignSet,
) -> None:
    shop = Shop(_bounded(campaigns, max_sessions=100, max_profiles=5))
    order = {"cartItems": [BLOUSE, TROUSERS], "couponCodes": ["FREESHIP"]}
    shop.session("old", "ann", "closed", additionalCosts=SHIPPING, **order)
    for number in range(5):
        shop.session(f"other-{number}", f"other-{number}", "open", cartItems=[BLOUSE])
    assert "ann" not in shop.state.profiles
    assert "old" in shop.state.sessions
    shop.session("new", "ann", "closed", additionalCosts=SHIPPING, **order)
    ann = shop.state.profiles["ann"]
    before = (ann.closed_sessions, ann.total_sales, ann.points)
    # Returning and cancelling the old session changes nothing of the new ann.
    shop.api.return_cart_items("old", {"return": {"returnedCartItems": [{"position": 0}]}})
    shop.session("old", "ann", "cancelled")
    assert (ann.closed_sessions, ann.total_sales, ann.points) == before == (1, 128.0, {1: 123.0})
    freeship = shop.state.ledger.coupon_record("FREESHIP")
    assert freeship is not None
    assert freeship.redemptions == {"ann": 1}
    assert shop.loyalty.get_balances("1", "ann")["balance"]["activePoints"] == 123


def test_memory_stops_growing_at_the_caps(campaigns: CampaignSet) -> None:
    cap = 200
    shop = Shop(_bounded(campaigns, max_sessions=2 * cap, max_profiles=cap))

    def measured() -> int:
        # The code and UUID caches are bounded by their own size (65,536 entries), not by the
        # caps: left out of the comparison.
        generated_code.cache_clear()
        transaction_uuid.cache_clear()
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    try:
        shop.customers(range(cap))
        at_cap = measured()
        shop.customers(range(cap, 10 * cap))
        after = measured()
    finally:
        tracemalloc.stop()
    _assert_within_caps(shop.state)
    assert after < 2 * at_cap, f"{at_cap:,} bytes at the caps, {after:,} after 10 times as many"


def test_the_caps_default_to_the_documented_values() -> None:
    config = EmulatorConfig(api_keys=["key"])
    assert (config.max_sessions, config.max_profiles) == (200_000, 200_000)
    assert (DEFAULT_MAX_SESSIONS, DEFAULT_MAX_PROFILES) == (200_000, 200_000)
    docs = (ROOT / "docs" / "emulator.md").read_text(encoding="utf-8")
    assert re.search(r"\| `max_sessions` \| `200_000` \|", docs)
    assert re.search(r"\| `max_profiles` \| `200_000` \|", docs)
    assert "--max-sessions N" in docs
    assert "--max-profiles N" in docs


@pytest.mark.parametrize("field", ["max_sessions", "max_profiles"])
def test_a_cap_below_one_is_a_config_error(field: str) -> None:
    caps: dict[str, Any] = {field: 0}
    with pytest.raises(ConfigError, match=field):
        EmulatorConfig(api_keys=["key"], **caps)


def test_the_cli_rejects_a_cap_below_one() -> None:
    result = CliRunner().invoke(main, ["emulator", "--api-key", "k", "--max-sessions", "0"])
    assert result.exit_code == 2
    assert "--max-sessions" in result.output


def _http(method: str, url: str, body: object = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "ApiKey-v1 k", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def test_the_cli_passes_the_caps_to_the_emulator() -> None:
    port = free_port()
    command = [sys.executable, "-m", "talon_stream.cli", "emulator", "--port", str(port)]
    command += ["--api-key", "k", "--max-sessions", "2", "--max-profiles", "3"]
    command += ["--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _http("GET", f"{base}/__emulator/health")
                break
            except OSError:
                assert process.poll() is None, "the emulator exited"
                assert time.monotonic() < deadline, "the emulator did not start in 30 s"
                time.sleep(0.05)
        for number in range(4):
            body = {"customerSession": {"profileId": f"p-{number}", "state": "open"}}
            assert _http("PUT", f"{base}/v2/customer_sessions/s-{number}", body)[0] == 200
        _, health = _http("GET", f"{base}/__emulator/health")
        assert (health["sessions"], health["profiles"]) == (2, 3)
        assert _http("GET", f"{base}/v2/customer_sessions/s-1")[0] == 404
        assert _http("GET", f"{base}/v2/customer_sessions/s-3")[0] == 200
    finally:
        terminate(process)


def test_a_state_cap_below_one_is_a_value_error(campaigns: CampaignSet) -> None:
    with pytest.raises(ValueError, match="max_sessions"):
        EmulatorState(campaigns, max_sessions=0)
    with pytest.raises(ValueError, match="max_profiles"):
        EmulatorState(campaigns, max_profiles=0)
