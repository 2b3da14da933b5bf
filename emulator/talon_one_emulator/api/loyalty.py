"""The loyalty and loyalty card operations of the Integration API (none runs the rule engine).

Profile endpoints (``/v1/loyalty_programs/{id}/profile/{integrationId}/...``) work on
profile-based programs, card endpoints (``.../cards/{loyaltyCardId}...``) on card-based ones;
the other kind of program is a 400. Unknown programs, profiles and cards are a 404 (a 400 for
``generateLoyaltyCard``, which declares no 404), except that ``joinLoyaltyProgram`` creates an
unknown profile before it joins. Lists are paged with ``pageSize`` (default 50)
and ``skip``; transactions come newest first, points in the order they were earned unless
``sort`` says otherwise.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from talon_one_emulator.api.queries import Page
from talon_one_emulator.api.validation import pointer, validate_body
from talon_one_emulator.campaigns.loyalty import LoyaltyProgramSpec
from talon_one_emulator.errors import (
    ApiErrorDetail,
    BadRequestError,
    InvalidDataError,
    NotFoundError,
)
from talon_one_emulator.models.loyalty import (
    ActivateLoyaltyPoints,
    DeleteLoyaltyTransactionsRequest,
    GenerateLoyaltyCard,
    LoyaltyCardRegistration,
)
from talon_one_emulator.render.loyalty import (
    balance_json,
    balance_with_tier_json,
    card_json,
    ledger_entry_json,
    points_json,
    transaction_json,
)
from talon_one_emulator.rules.loyalty import transaction_uuid
from talon_one_emulator.store.loyalty_ledger import (
    Account,
    CardRecord,
    Status,
    Transaction,
    balance,
)
from talon_one_emulator.times import format_time

if TYPE_CHECKING:
    from talon_one_emulator.store.state import EmulatorState, ProfileRecord

__all__ = ["LoyaltyService", "PointsFilter", "TransactionFilter"]

Body = dict[str, Any]

_FAR_FUTURE = datetime.max


def _invalid(
    details: str, *, at: str | None = None, parameter: str | None = None
) -> InvalidDataError:
    return InvalidDataError((ApiErrorDetail("Invalid", details, pointer=at, parameter=parameter),))


@dataclass(frozen=True, slots=True)
class TransactionFilter:
    """The query of the transaction endpoints."""

    page: Page
    subledger_ids: tuple[str, ...] | None = None
    transaction_type: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    session_ids: tuple[str, ...] | None = None
    uuids: tuple[str, ...] | None = None
    awaits_activation: bool = False

    def matches(self, tx: Transaction) -> bool:
        # Every emulated transaction comes from the rule engine: type "session".
        return (
            (self.subledger_ids is None or tx.subledger_id in self.subledger_ids)
            and self.transaction_type in (None, "session")
            and (self.start is None or tx.created >= self.start)
            and (self.end is None or tx.created <= self.end)
            and (self.session_ids is None or tx.session_id in self.session_ids)
            and (self.uuids is None or tx.uuid in self.uuids)
            and (not self.awaits_activation or tx.awaits_activation)
        )


@dataclass(frozen=True, slots=True)
class PointsFilter:
    """The query of the points endpoints."""

    page: Page
    status: Status = "active"
    subledger_ids: tuple[str, ...] | None = None
    session_ids: tuple[str, ...] | None = None
    uuids: tuple[str, ...] | None = None
    sort: str | None = None

    def matches(self, tx: Transaction, now: datetime) -> bool:
        return (
            tx.kind == "addition"
            and tx.remaining > 0
            and tx.status(now) == self.status
            and (self.subledger_ids is None or tx.subledger_id in self.subledger_ids)
            and (self.session_ids is None or tx.session_id in self.session_ids)
            and (self.uuids is None or tx.uuid in self.uuids)
        )


def _sort_key(field: str) -> Any:
    def key(tx: Transaction) -> tuple[datetime, int]:
        if field == "startDate":
            moment = tx.start or tx.created
        else:
            moment = tx.expiry or _FAR_FUTURE.replace(tzinfo=tx.created.tzinfo)
        return moment, tx.id

    return key


def _page(items: list[Body], page: Page) -> Body:
    return {
        "hasMore": page.has_more(len(items)),
        "data": items[page.skip : page.skip + page.size],
    }


def _transactions(account: Account | None) -> Iterator[Transaction]:
    if account is None:
        return
    for ledger in account.ledgers.values():
        yield from ledger.transactions


class LoyaltyService:
    """The loyalty operations over one :class:`~talon_one_emulator.store.state.EmulatorState`."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    # --- lookups -----------------------------------------------------------------------------

    def _program(self, raw_id: str | int, *, card_based: bool | None = None) -> LoyaltyProgramSpec:
        try:
            program_id = int(raw_id)
        except ValueError:
            details = f"loyaltyProgramId must be an integer, got {raw_id!r}"
            detail = ApiErrorDetail("Invalid type", details, parameter="loyaltyProgramId")
            raise InvalidDataError((detail,)) from None
        program = self.state.loyalty.programs.get(program_id)
        if program is None:
            raise NotFoundError(f"Loyalty program {program_id} not found")
        if card_based is True and not program.card_based:
            raise BadRequestError(f"Loyalty program {program_id} is not a card-based program")
        if card_based is False and program.card_based:
            raise BadRequestError(f"Loyalty program {program_id} is not a profile-based program")
        return program

    def _profile(self, integration_id: str) -> ProfileRecord:
        profile = self.state.profiles.get(integration_id)
        if profile is None:
            raise NotFoundError(f'Customer profile "{integration_id}" not found')
        return profile

    def _card(self, program: LoyaltyProgramSpec, identifier: str) -> CardRecord:
        if not 4 <= len(identifier) <= 108:
            detail = ApiErrorDetail(
                "Invalid",
                "loyaltyCardId must have between 4 and 108 characters",
                parameter="loyaltyCardId",
            )
            raise InvalidDataError((detail,))
        card = self.state.loyalty.cards[program.id].get(identifier)
        if card is None:
            raise NotFoundError(f'Loyalty card "{identifier}" not found in program {program.id}')
        return card

    def _profile_account(
        self, program_id: str, integration_id: str
    ) -> tuple[LoyaltyProgramSpec, Account | None]:
        """A profile-based program and the profile's account in it (``None``: no points yet)."""
        program = self._program(program_id, card_based=False)
        self._profile(integration_id)
        return program, self.state.loyalty.profile_account(program.id, integration_id)

    def _card_of(self, program_id: str, card_id: str) -> CardRecord:
        """A card of a card-based program (``card.program``)."""
        return self._card(self._program(program_id, card_based=True), card_id)

    def _registered_profile(self, body: Any) -> str:
        """The known profile a LoyaltyCardRegistration body names."""
        integration_id = validate_body(LoyaltyCardRegistration, body).integration_id
        self._profile(integration_id)
        return integration_id

    def _subledger(
        self,
        program: LoyaltyProgramSpec,
        subledger_id: str,
        *,
        at: str | None = None,
        parameter: str | None = None,
    ) -> None:
        """Check that the program has the subledger (the error points ``at`` the body, or names
        the query ``parameter``)."""
        if not program.has_subledger(subledger_id):
            raise _invalid(
                f"loyalty program {program.id} has no subledger {subledger_id!r}",
                at=at,
                parameter=parameter,
            )

    def _now(self) -> datetime:
        return self.state.clock()

    # --- profile-based programs --------------------------------------------------------------

    def get_balances(
        self,
        program_id: str,
        integration_id: str,
        *,
        end_date: datetime | None = None,
        subledger_id: str | None = None,
        include_tiers: bool = False,
        include_projected_tier: bool = False,
    ) -> Body:
        """getLoyaltyBalances: LoyaltyBalancesWithTiers of a profile.

        Raises:
            NotFoundError: unknown program or profile.
            BadRequestError: the program is card-based.
            InvalidDataError: unknown subledger.
        """
        program, account = self._profile_account(program_id, integration_id)
        if subledger_id is not None:
            self._subledger(program, subledger_id, parameter="subledgerId")
        at = end_date or self._now()
        ledgers = account.ledgers if account is not None else {}
        main = balance(ledgers.get(""), at)
        wanted = program.subledgers if subledger_id is None else (subledger_id,)
        return {
            "balance": balance_with_tier_json(
                program, main, tiers=include_tiers, projected=include_projected_tier
            ),
            "subledgerBalances": {
                sub: balance_with_tier_json(
                    program, balance(ledgers.get(sub), at), tiers=False, projected=False
                )
                for sub in wanted
                if sub != ""
            },
        }

    def get_profile_transactions(
        self, program_id: str, integration_id: str, query: TransactionFilter
    ) -> Body:
        """getLoyaltyProgramProfileTransactions: ``{hasMore, data}``, newest first.

        Raises:
            NotFoundError: unknown program or profile.
            BadRequestError: the program is card-based.
        """
        _, account = self._profile_account(program_id, integration_id)
        return self._transaction_page(_transactions(account), query, card=False)

    def get_profile_points(self, program_id: str, integration_id: str, query: PointsFilter) -> Body:
        """getLoyaltyProgramProfilePoints: the unspent points, ``{hasMore, data}``.

        Raises:
            NotFoundError: unknown program or profile.
            BadRequestError: the program is card-based.
        """
        _, account = self._profile_account(program_id, integration_id)
        return self._points_page(_transactions(account), query, card=False)

    def delete_transactions(self, program_id: str, integration_id: str, body: Any) -> None:
        """deleteLoyaltyTransactionsFromLedgers (204): empty the profile's ledgers.

        Raises:
            NotFoundError: unknown program or profile.
            BadRequestError: the program is card-based.
            InvalidDataError: invalid body, or unknown subledgers.
        """
        program, _ = self._profile_account(program_id, integration_id)
        request = validate_body(DeleteLoyaltyTransactionsRequest, body)
        if request.scope == "AllSubledgers":
            subledgers: list[str] = ["", *program.subledgers]
        else:
            subledgers = list(request.subledger_ids or ())
            if not subledgers:
                raise _invalid(
                    "subledgerIds is required with scope SelectedSubledgers",
                    at=pointer("subledgerIds"),
                )
            for index, subledger_id in enumerate(subledgers):
                self._subledger(program, subledger_id, at=pointer("subledgerIds", index))
        self.state.loyalty.delete_transactions(program, integration_id, subledgers)

    def join_program(self, program_id: str, integration_id: str) -> None:
        """joinLoyaltyProgram (200, no body): the profile, created if unknown, joins the program.

        Raises:
            NotFoundError: unknown program.
            BadRequestError: the program is card-based, or the profile has joined it already
                (by this call, or by earning points in it).
            InvalidDataError: the program ID is not an integer.
        """
        program = self._program(program_id, card_based=False)
        state = self.state
        if state.loyalty.profile_account(program.id, integration_id) is not None:
            raise BadRequestError(
                f'Customer profile "{integration_id}" has already joined loyalty program '
                f"{program.id}"
            )
        now = self._now()
        state.ensure_profile(integration_id, format_time(now))
        state.loyalty.join(program, integration_id, now)

    # --- both kinds --------------------------------------------------------------------------

    def activate_points(self, program_id: str, body: Any) -> Body:
        """activateLoyaltyPoints: activate points that await activation.

        Either ``transactionUUIDs`` or ``sessionId``; answers the activated ledger entries.

        Raises:
            NotFoundError: unknown program, or no points of these transactions or session.
            InvalidDataError: invalid body, or both or neither of the two.
        """
        program = self._program(program_id)
        request = validate_body(ActivateLoyaltyPoints, body)
        uuids = request.transaction_uuids
        if (uuids is None) == (request.session_id is None):
            raise _invalid("give exactly one of transactionUUIDs and sessionId", at="")
        store = self.state.loyalty
        earned = [
            tx
            for tx in store.program_transactions(program.id)
            if tx.kind == "addition" and tx.reason == "earn"
        ]
        if uuids is not None:
            wanted = [str(value) for value in uuids]
            found = [tx for tx in earned if tx.uuid in wanted]
            missing = sorted(set(wanted) - {tx.uuid for tx in found})
            if missing:
                raise NotFoundError(
                    f"Loyalty transactions not found in program {program.id}: " + ", ".join(missing)
                )
        else:
            found = [tx for tx in earned if tx.session_id == request.session_id]
            if not found:
                raise NotFoundError(
                    f'No loyalty points of customer session "{request.session_id}" in '
                    f"program {program.id}"
                )
        activated = store.activate(program, found, self._now())
        cards = store.cards.get(program.id, {})
        return {
            "ledgerEntries": [
                ledger_entry_json(tx, cards.get(tx.card) if tx.card is not None else None)
                for tx in activated
            ]
        }

    # --- card-based programs -----------------------------------------------------------------

    def get_card_balances(
        self,
        program_id: str,
        card_id: str,
        *,
        end_date: datetime | None = None,
        subledger_ids: tuple[str, ...] | None = None,
    ) -> Body:
        """getLoyaltyCardBalances: LoyaltyCardBalances.

        Raises:
            NotFoundError: unknown program or card.
            BadRequestError: the program is profile-based.
        """
        card = self._card_of(program_id, card_id)
        program = card.program
        for subledger_id in subledger_ids or ():
            self._subledger(program, subledger_id, parameter="subledgerId")
        at = end_date or self._now()
        ledgers = card.account.ledgers
        wanted = program.subledgers if subledger_ids is None else subledger_ids
        return {
            "balance": balance_json(balance(ledgers.get(""), at)),
            "subledgerBalances": {
                sub: balance_json(balance(ledgers.get(sub), at)) for sub in wanted if sub != ""
            },
            "profiles": card_json(card, at)["profiles"],
        }

    def get_card_transactions(
        self, program_id: str, card_id: str, query: TransactionFilter
    ) -> Body:
        """getLoyaltyCardTransactions: ``{hasMore, data}``, newest first.

        Raises:
            NotFoundError: unknown program or card.
            BadRequestError: the program is profile-based.
        """
        card = self._card_of(program_id, card_id)
        return self._transaction_page(_transactions(card.account), query, card=True)

    def get_card_points(self, program_id: str, card_id: str, query: PointsFilter) -> Body:
        """getLoyaltyCardPoints: the card's unspent points, ``{hasMore, data}``.

        Raises:
            NotFoundError: unknown program or card.
            BadRequestError: the program is profile-based.
        """
        card = self._card_of(program_id, card_id)
        return self._points_page(_transactions(card.account), query, card=True)

    def link_card(self, program_id: str, card_id: str, body: Any) -> Body:
        """linkLoyaltyCardToProfile: LoyaltyCard (linking a linked profile changes nothing).

        Raises:
            NotFoundError: unknown program, card or profile.
            BadRequestError: profile-based program, or the card's user limit is reached.
            InvalidDataError: invalid body.
        """
        card = self._card_of(program_id, card_id)
        program = card.program
        integration_id = self._registered_profile(body)
        now = self._now()
        if integration_id not in card.profiles:
            limit = program.users_per_card_limit
            if limit and len(card.profiles) >= limit:
                raise BadRequestError(
                    f'Loyalty card "{card.identifier}" is already linked to {limit} customer '
                    "profiles, the most its program allows"
                )
            self.state.loyalty.link(card, integration_id, now)
            card.modified = now
        return card_json(card, now)

    def unlink_card(self, program_id: str, card_id: str, body: Any) -> Body:
        """unlinkLoyaltyCardFromProfile: LoyaltyCard.

        Raises:
            NotFoundError: unknown program, card or profile.
            BadRequestError: profile-based program, or the profile is not linked to the card.
            InvalidDataError: invalid body.
        """
        card = self._card_of(program_id, card_id)
        integration_id = self._registered_profile(body)
        if integration_id not in card.profiles:
            raise BadRequestError(
                f'Customer profile "{integration_id}" is not linked to loyalty card '
                f'"{card.identifier}"'
            )
        now = self._now()
        self.state.loyalty.unlink(card, integration_id)
        card.modified = now
        return card_json(card, now)

    def generate_card(self, program_id: str, body: Any) -> Body:
        """generateLoyaltyCard: a new card (200 LoyaltyCard), linked to the given profiles.

        The specification declares no 404 here, so an unknown program or profile is a 400.

        Raises:
            BadRequestError: unknown or profile-based program, an identifier in use, unknown
                profiles, or more profiles than the card's user limit.
            InvalidDataError: invalid body.
        """
        try:
            program = self._program(program_id, card_based=True)
        except NotFoundError as exc:
            raise BadRequestError(exc.message) from None
        request = validate_body(GenerateLoyaltyCard, body)
        store = self.state.loyalty
        cards = store.cards[program.id]
        identifier = request.card_identifier
        if identifier is not None and identifier in cards:
            raise _invalid(
                f'loyalty card "{identifier}" already exists in program {program.id}',
                at=pointer("cardIdentifier"),
            )
        profiles = list(dict.fromkeys(request.customer_profile_ids or ()))
        for index, integration_id in enumerate(profiles):
            if integration_id not in self.state.profiles:
                raise _invalid(
                    f'customer profile "{integration_id}" not found',
                    at=pointer("customerProfileIds", index),
                )
        limit = program.users_per_card_limit
        if limit and len(profiles) > limit:
            raise _invalid(
                f"a card of program {program.id} can be linked to at most {limit} profiles",
                at=pointer("customerProfileIds"),
            )
        if identifier is None:
            identifier = self._free_identifier(program, cards)
        now = self._now()
        card = store.add_card(program, identifier, request.status, now)
        for integration_id in profiles:
            store.link(card, integration_id, now)
        return card_json(card, now)

    @staticmethod
    def _free_identifier(program: LoyaltyProgramSpec, cards: dict[str, CardRecord]) -> str:
        for attempt in itertools.count():
            seed = f"card/{program.id}/{len(cards)}/{attempt}"
            identifier = transaction_uuid(seed).replace("-", "")[:12].upper()
            if identifier not in cards:
                return identifier
        raise AssertionError("unreachable")  # pragma: no cover

    # --- lists -------------------------------------------------------------------------------

    def _transaction_page(
        self, transactions: Iterable[Transaction], query: TransactionFilter, *, card: bool
    ) -> Body:
        found = sorted(
            (tx for tx in transactions if query.matches(tx)), key=lambda tx: tx.id, reverse=True
        )
        return _page([transaction_json(tx, card=card) for tx in found], query.page)

    def _points_page(
        self, transactions: Iterable[Transaction], query: PointsFilter, *, card: bool
    ) -> Body:
        now = self._now()
        found = [tx for tx in transactions if query.matches(tx, now)]
        if query.sort is None:
            found.sort(key=lambda tx: tx.id)
        else:
            field = query.sort.removeprefix("-")
            found.sort(key=_sort_key(field), reverse=query.sort.startswith("-"))
        return _page([points_json(tx, card=card) for tx in found], query.page)
