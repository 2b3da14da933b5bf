"""Loyalty ledgers: the points of customer profiles and loyalty cards, per program and subledger.

::

    LoyaltyStore
    ├── accounts     (program, profile integration ID) → Account   profile-based programs
    │                (a profile is a member of the program while it has one)
    ├── cards        program → identifier → CardRecord (with its Account)   card-based programs
    ├── card links   profile integration ID → its cards (CardRecord.profiles the other way)
    └── transactions by UUID

    Account ── subledger ID ("" = main ledger) → Ledger ── [Transaction], negative balance

The records are in :mod:`talon_one_emulator.store.loyalty_ledger`. Points are written here only by
:meth:`LoyaltyStore.record`, from the effects of a closed session (or of an event or profile
update, at once) and from rollback effects; a session that is still open only has tentative
points (its effects), which :mod:`talon_one_emulator.render.loyalty` adds to the balances it shows.
:class:`PointsView` is what one evaluation sees of them.

A profile the emulator forgets (beyond its cap of profiles) takes its accounts, their
transactions and its card links with it (:meth:`LoyaltyStore.forget_profile`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from talon_one_emulator.campaigns.loyalty import DeductLoyaltyPoints, LoyaltyProgramSpec
from talon_one_emulator.money import round_money
from talon_one_emulator.rules.loyalty import transaction_uuid
from talon_one_emulator.store.loyalty_ledger import (
    EPSILON,
    Account,
    CardRecord,
    Ledger,
    Transaction,
    balance,
)
from talon_one_emulator.times import parse_stamp

if TYPE_CHECKING:
    from talon_one_emulator.campaigns.file import CampaignSet
    from talon_one_emulator.store.records import ProfileRecord

__all__ = [
    "LOYALTY_EFFECTS",
    "LoyaltyStore",
    "PointsView",
    "points_view_needed",
]

Effect = dict[str, Any]
Kind = Literal["addition", "subtraction"]
Reason = Literal["earn", "spend", "rollback", "refund"]

# The effect types that change ledgers.
LOYALTY_EFFECTS = frozenset(
    {
        "addLoyaltyPoints",
        "deductLoyaltyPoints",
        "rollbackAddedLoyaltyPoints",
        "rollbackDeductedLoyaltyPoints",
    }
)


def points_view_needed(campaigns: CampaignSet) -> bool:
    """Whether evaluations need a :class:`PointsView`: a rule deducts points, or a program is
    card-based or has tiers. Otherwise points are only added, and evaluations skip the view."""
    if any(program.card_based or program.tiers for program in campaigns.loyalty_programs):
        return True
    return any(
        isinstance(effect, DeductLoyaltyPoints)
        for campaign in campaigns.campaigns
        for rule in campaign.rules
        for effect in rule.effects
    )


class PointsView:
    """The points one evaluation sees: persisted balances minus what it spends (a
    :class:`~talon_one_emulator.rules.facts.LoyaltyView`)."""

    __slots__ = ("_card", "_earned", "_now", "_profile_id", "_spent", "_store")

    def __init__(
        self, store: LoyaltyStore, profile_id: str | None, card: str | None, now: datetime
    ) -> None:
        self._store = store
        self._profile_id = profile_id
        self._card = card
        self._now = now
        self._spent: dict[tuple[int, str, str | None], float] = {}
        self._earned: dict[tuple[int, str | None], float] = {}

    def card(self, program_id: int) -> str | None:
        identifier = self._card
        if identifier is None:
            return None
        record = self._store.cards.get(program_id, {}).get(identifier)
        if record is None or record.status != "active":
            return None
        return identifier

    def _active(self, program_id: int, subledger_id: str, card: str | None) -> float:
        account = self._store.account(program_id, self._profile_id, card)
        if account is None:
            return 0.0
        return balance(account.ledgers.get(subledger_id), self._now).active

    def spendable(self, program_id: int, subledger_id: str, card: str | None) -> float:
        if self._store.programs[program_id].allow_negative_balance:
            return math.inf
        spent = self._spent.get((program_id, subledger_id, card), 0.0)
        return self._active(program_id, subledger_id, card) - spent

    def spend(self, program_id: int, subledger_id: str, card: str | None, points: float) -> None:
        key = (program_id, subledger_id, card)
        self._spent[key] = self._spent.get(key, 0.0) + points

    def earn(self, program_id: int, card: str | None, points: float) -> tuple[float, float]:
        key = (program_id, card)
        before = self._active(program_id, "", card) + self._earned.get(key, 0.0)
        if self._store.programs[program_id].pending_at_earning:
            return before, before  # pending points do not count for the tier yet
        self._earned[key] = self._earned.get(key, 0.0) + points
        return before, before + points


class LoyaltyStore:
    """Every loyalty ledger and card of the Application.

    Args:
        programs: the campaign file's loyalty programs.
        profiles: the state's profiles by integration ID (profile ledgers exist only for them;
            their ``points`` mirror is kept up to date).
        created: when the cards of the campaign file were created.
        needs_view: whether evaluations need a :class:`PointsView` (a campaign deducts points,
            or a program is card-based or has tiers).
    """

    def __init__(
        self,
        programs: Sequence[LoyaltyProgramSpec],
        profiles: Mapping[str, ProfileRecord],
        created: datetime,
        *,
        needs_view: bool,
    ) -> None:
        self.programs = {program.id: program for program in programs}
        self.needs_view = needs_view
        self._profiles = profiles
        self.accounts: dict[tuple[int, str], Account] = {}
        self.cards: dict[int, dict[str, CardRecord]] = {
            program.id: {} for program in programs if program.card_based
        }
        self._profile_programs = tuple(program.id for program in programs if not program.card_based)
        # Linked profile → its cards by (program, identifier), so that cards_of and
        # forget_profile need not scan every card.
        self._links: dict[str, dict[tuple[int, str], CardRecord]] = {}
        self._by_uuid: dict[str, Transaction] = {}
        self._fresh: list[Transaction] = []  # what the running record() created
        self._transaction_ids = itertools.count(1)
        self._card_ids = itertools.count(1)
        for program in programs:
            for card in program.cards:
                self.add_card(program, card.identifier, card.status, created)

    # --- lookups -----------------------------------------------------------------------------

    def account(self, program_id: int, profile_id: str | None, card: str | None) -> Account | None:
        """The account of a card (card-based programs) or a profile (profile-based ones)."""
        if card is not None:
            record = self.cards.get(program_id, {}).get(card)
            return record.account if record is not None else None
        if profile_id is None:
            return None
        return self.accounts.get((program_id, profile_id))

    def profile_account(self, program_id: int, profile_id: str) -> Account | None:
        return self.accounts.get((program_id, profile_id))

    def cards_of(self, profile_id: str) -> list[CardRecord]:
        """The cards a profile is linked to, in creation order."""
        return sorted(self._links.get(profile_id, {}).values(), key=lambda card: card.id)

    @property
    def transaction_count(self) -> int:
        """How many transactions the UUID index holds (the transactions of every ledger)."""
        return len(self._by_uuid)

    def view(
        self, profile_id: str | None, cards: Sequence[str], now: datetime
    ) -> PointsView | None:
        """What one evaluation sees (``None`` when no campaign needs it)."""
        if not self.needs_view:
            return None
        return PointsView(self, profile_id, cards[0] if cards else None, now)

    # --- membership --------------------------------------------------------------------------

    def join(self, program: LoyaltyProgramSpec, profile_id: str, now: datetime) -> bool:
        """Make an existing profile a member of a profile-based program (its account, without
        points, joined ``now``); ``False`` if it is one already. Earning points joins too."""
        key = (program.id, profile_id)
        if key in self.accounts:
            return False
        self.accounts[key] = Account(now)
        return True

    # --- cards -------------------------------------------------------------------------------

    def add_card(
        self,
        program: LoyaltyProgramSpec,
        identifier: str,
        status: str,
        now: datetime,
        *,
        batch_id: str | None = None,
    ) -> CardRecord:
        record = CardRecord(
            id=next(self._card_ids),
            identifier=identifier,
            program=program,
            status=status,
            created=now,
            modified=now,
            account=Account(now),
            batch_id=batch_id,
        )
        self.cards[program.id][identifier] = record
        return record

    def link(self, card: CardRecord, profile_id: str, now: datetime) -> None:
        """Link a profile to a card (the caller checks the card's user limit)."""
        card.profiles[profile_id] = now
        links = self._links.get(profile_id)
        if links is None:
            links = self._links[profile_id] = {}
        links[card.program.id, card.identifier] = card

    def unlink(self, card: CardRecord, profile_id: str) -> None:
        """Unlink a profile from a card (if linked)."""
        card.profiles.pop(profile_id, None)
        links = self._links.get(profile_id)
        if links is not None:
            links.pop((card.program.id, card.identifier), None)
            if not links:
                del self._links[profile_id]

    def forget_profile(self, profile_id: str) -> None:
        """Drop a forgotten profile's accounts, their transactions (also from the UUID index)
        and its card links. Card ledgers keep the transactions its sessions wrote: they are
        the card's."""
        for program_id in self._profile_programs:
            account = self.accounts.pop((program_id, profile_id), None)
            if account is None:
                continue
            for ledger in account.ledgers.values():
                for tx in ledger.transactions:
                    if self._by_uuid.get(tx.uuid) is tx:
                        del self._by_uuid[tx.uuid]
        for card in self._links.pop(profile_id, {}).values():
            card.profiles.pop(profile_id, None)

    # --- writing -----------------------------------------------------------------------------

    def record(
        self,
        effects: Iterable[Effect],
        *,
        profile_id: str | None,
        now: datetime,
        session_id: str | None = None,
        event_id: int | None = None,
    ) -> list[Transaction]:
        """Persist the loyalty effects among ``effects``; other effects are ignored. Returns
        the transactions recorded.

        ``addLoyaltyPoints`` adds points (to the card, or to the existing profile),
        ``deductLoyaltyPoints`` spends them, the two rollbacks undo earlier transactions.
        """
        self._fresh = []
        for effect in effects:
            effect_type = effect["effectType"]
            if effect_type not in LOYALTY_EFFECTS:
                continue
            props = effect["props"]
            program = self.programs.get(int(props["programId"]))
            if program is None:
                continue
            card = props.get("cardIdentifier")
            if effect_type == "addLoyaltyPoints":
                owner = props.get("recipientIntegrationId") or profile_id
                account = self._writable(program, owner, card, now)
                if account is not None:
                    self._add(program, account, effect, owner, card, now, session_id, event_id)
            elif effect_type == "deductLoyaltyPoints":
                account = self._writable(program, profile_id, card, now)
                if account is not None:
                    self._deduct(program, account, effect, profile_id, card, now, session_id)
            elif effect_type == "rollbackAddedLoyaltyPoints":
                self._rollback_added(program, effect, now, session_id)
            else:
                self._rollback_deducted(program, effect, now, session_id)
        fresh, self._fresh = self._fresh, []
        return fresh

    def _writable(
        self, program: LoyaltyProgramSpec, profile_id: str | None, card: str | None, now: datetime
    ) -> Account | None:
        if program.card_based:
            if card is None:
                return None
            record = self.cards.get(program.id, {}).get(card)
            return record.account if record is not None else None
        if not profile_id or profile_id not in self._profiles:
            return None  # ledgers exist only for existing profiles
        key = (program.id, profile_id)
        account = self.accounts.get(key)
        if account is None:
            account = self.accounts[key] = Account(now)
        return account

    def _new(
        self,
        program: LoyaltyProgramSpec,
        effect: Effect,
        now: datetime,
        kind: Kind,
        reason: Reason,
        *,
        profile_id: str | None = None,
        card: str | None = None,
        session_id: str | None = None,
        undoes: tuple[Transaction, Ledger] | None = None,
        **values: Any,
    ) -> Transaction:
        """A transaction of ``effect``'s points (``value``), registered by its UUID.

        Its UUID, subledger and name are the effect's; a rollback (``undoes``: the original
        transaction and its ledger) has a UUID of its own and the original's ledger and owner.
        """
        props = effect["props"]
        if undoes is None:
            uuid = str(props["transactionUUID"])
            subledger_id = str(props["subLedgerId"])
            name = str(props["name"])
            profile_id = profile_id or None
        else:
            original, ledger = undoes
            uuid = transaction_uuid(f"{original.uuid}/{len(ledger.transactions)}")
            subledger_id, name = original.subledger_id, original.name
            profile_id, card = original.profile_id, original.card
            session_id = session_id or original.session_id
        tx = Transaction(
            id=next(self._transaction_ids),
            uuid=uuid,
            created=now,
            program_id=program.id,
            subledger_id=subledger_id,
            kind=kind,
            reason=reason,
            amount=float(props["value"]),
            name=name,
            profile_id=profile_id,
            card=card,
            session_id=session_id,
            ruleset_id=effect.get("rulesetId"),
            rule_name=effect.get("ruleName"),
            **values,
        )
        self._by_uuid[tx.uuid] = tx
        self._fresh.append(tx)
        return tx

    def _original(
        self, program: LoyaltyProgramSpec, effect: Effect, kind: Kind
    ) -> tuple[Transaction, Ledger] | None:
        """The transaction a rollback effect undoes and its ledger (``None``: unknown, or not
        a ``kind`` transaction)."""
        original = self._by_uuid.get(str(effect["props"]["transactionUUID"]))
        if original is None or original.kind != kind:
            return None
        account = self.account(program.id, original.profile_id, original.card)
        if account is None:
            return None
        return original, account.ledger(original.subledger_id)

    def _add(
        self,
        program: LoyaltyProgramSpec,
        account: Account,
        effect: Effect,
        owner: str | None,
        card: str | None,
        now: datetime,
        session_id: str | None,
        event_id: int | None,
    ) -> None:
        props = effect["props"]
        start = props.get("startDate")
        expiry = props.get("expiryDate")
        ledger = account.ledger(str(props["subLedgerId"]))
        tx = self._new(
            program,
            effect,
            now,
            "addition",
            "earn",
            profile_id=owner,
            card=card,
            session_id=session_id,
            event_id=event_id,
            start=parse_stamp(start) if start else None,
            expiry=parse_stamp(expiry) if expiry else None,
            awaits_activation=bool(props.get("awaitsActivation")),
            validity_days=program.validity_days if props.get("awaitsActivation") else None,
        )
        ledger.append(tx, now)
        ledger.adjust(tx, tx.amount)
        if tx.status(now) == "active":
            self._settle(ledger, tx)
        self._mirror(program, owner, tx.amount)

    @staticmethod
    def _settle(ledger: Ledger, tx: Transaction) -> None:
        """New active points first pay off a negative balance."""
        if ledger.negative > EPSILON:
            paid = min(ledger.negative, tx.remaining)
            ledger.negative = round_money(ledger.negative - paid)
            ledger.adjust(tx, -paid)

    def _deduct(
        self,
        program: LoyaltyProgramSpec,
        account: Account,
        effect: Effect,
        profile_id: str | None,
        card: str | None,
        now: datetime,
        session_id: str | None,
    ) -> None:
        props = effect["props"]
        ledger = account.ledger(str(props["subLedgerId"]))
        tx = self._new(
            program,
            effect,
            now,
            "subtraction",
            "spend",
            profile_id=profile_id,
            card=card,
            session_id=session_id,
        )
        value = tx.amount
        self._take(program, ledger, tx, value, now, None)
        ledger.append(tx, now)
        ledger.spent = round_money(ledger.spent + value)
        self._mirror(program, profile_id, -value)

    def _take(
        self,
        program: LoyaltyProgramSpec,
        ledger: Ledger,
        tx: Transaction,
        amount: float,
        now: datetime,
        first: Transaction | None,
    ) -> None:
        """Take ``amount`` points for the subtraction ``tx``: from ``first``, then from the
        active additions that expire first; the rest is a negative balance if allowed."""
        left = amount
        for source in ledger.sources(now, first):
            if left <= EPSILON:
                break
            part = min(source.remaining, left)
            if part <= EPSILON:
                continue
            ledger.adjust(source, -part)
            tx.taken.append((source, part))
            left = round_money(left - part)
        if left > EPSILON and program.allow_negative_balance:
            ledger.negative = round_money(ledger.negative + left)
            tx.overdraft = left

    def _rollback_added(
        self, program: LoyaltyProgramSpec, effect: Effect, now: datetime, session_id: str | None
    ) -> None:
        found = self._original(program, effect, "addition")
        if found is None:
            return
        original, ledger = found
        tx = self._new(
            program, effect, now, "subtraction", "rollback", session_id=session_id, undoes=found
        )
        value = tx.amount
        self._take(program, ledger, tx, value, now, original)
        ledger.append(tx, now)
        self._mirror(program, original.profile_id, -value)

    def _rollback_deducted(
        self, program: LoyaltyProgramSpec, effect: Effect, now: datetime, session_id: str | None
    ) -> None:
        found = self._original(program, effect, "subtraction")
        if found is None:
            return
        original, ledger = found
        value = left = float(effect["props"]["value"])
        # Give back the overdraft first, then the points taken, newest source first.
        back = min(original.overdraft, left)
        if back > 0:
            original.overdraft = round_money(original.overdraft - back)
            ledger.negative = round_money(max(0.0, ledger.negative - back))
            left = round_money(left - back)
        while left > EPSILON and original.taken:
            source, part = original.taken.pop()
            give = min(part, left)
            ledger.adjust(source, give)
            if give < part:
                original.taken.append((source, round_money(part - give)))
            left = round_money(left - give)
        tx = self._new(
            program, effect, now, "addition", "refund", session_id=session_id, undoes=found
        )
        ledger.append(tx, now)
        ledger.spent = round_money(ledger.spent - value)
        self._mirror(program, original.profile_id, value)

    def _mirror(self, program: LoyaltyProgramSpec, profile_id: str | None, delta: float) -> None:
        """Keep ``ProfileRecord.points`` (net points per profile-based program) up to date."""
        if program.card_based or not profile_id:
            return
        profile = self._profiles.get(profile_id)
        if profile is not None:
            profile.points[program.id] = profile.points.get(program.id, 0.0) + delta

    # --- life cycle --------------------------------------------------------------------------

    def reopen_rollbacks(self, rollbacks: list[Effect], now: datetime) -> list[Effect]:
        """The rollback effects a reopen emits: points that are active by now only go back
        when their program says so (``rollbackActivePointsOnReopen``); pending ones always."""
        out = []
        for effect in rollbacks:
            if effect["effectType"] == "rollbackAddedLoyaltyPoints":
                props = effect["props"]
                program = self.programs.get(int(props["programId"]))
                original = self._by_uuid.get(str(props["transactionUUID"]))
                if (
                    program is not None
                    and not program.rollback_active_points_on_reopen
                    and original is not None
                    and original.status(now) != "pending"
                ):
                    continue
            out.append(effect)
        return out

    def activate(
        self, program: LoyaltyProgramSpec, transactions: Iterable[Transaction], now: datetime
    ) -> list[Transaction]:
        """Activate additions that await activation; returns those activated."""
        activated = []
        for tx in transactions:
            if tx.kind != "addition" or not tx.awaits_activation:
                continue
            tx.awaits_activation = False
            tx.start = now
            if tx.validity_days is not None:
                tx.expiry = now + timedelta(days=tx.validity_days)
            account = self.account(program.id, tx.profile_id, tx.card)
            if account is not None:
                ledger = account.ledger(tx.subledger_id)
                ledger.changed(now)
                self._settle(ledger, tx)
            activated.append(tx)
        return activated

    def delete_transactions(
        self, program: LoyaltyProgramSpec, profile_id: str, subledgers: Iterable[str]
    ) -> None:
        """Remove every transaction of these ledgers of a profile (their balances become 0)."""
        account = self.accounts.get((program.id, profile_id))
        if account is None:
            return
        net = 0.0
        for subledger_id in subledgers:
            ledger = account.ledgers.pop(subledger_id, None)
            if ledger is None:
                continue
            for tx in ledger.transactions:
                net += tx.amount if tx.kind == "addition" else -tx.amount
                if self._by_uuid.get(tx.uuid) is tx:
                    del self._by_uuid[tx.uuid]
        self._mirror(program, profile_id, -net)

    def program_transactions(self, program_id: int) -> Iterator[Transaction]:
        """Every transaction of a program, of profiles and cards."""
        accounts: list[Account] = [
            account for (pid, _), account in self.accounts.items() if pid == program_id
        ]
        accounts += [card.account for card in self.cards.get(program_id, {}).values()]
        for account in accounts:
            for ledger in account.ledgers.values():
                yield from ledger.transactions
