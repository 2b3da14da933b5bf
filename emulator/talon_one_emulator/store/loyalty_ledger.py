"""The records of the loyalty ledgers: transactions, ledgers, accounts, cards and balances.

Every ledger is a log of transactions. An addition keeps how many of its points are still unspent
(``remaining``); its status follows from the time: *pending* before its start date (or until it
is activated), *active* until its expiry date, *expired* after. A subtraction (a deduction, or the
rollback of an addition) takes points from the active additions that expire first and remembers
which, so that rolling it back puts them back. :func:`balance` sums a ledger at a given time.
:class:`~talon_one_emulator.store.loyalty.LoyaltyStore` changes these records.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from talon_one_emulator.campaigns.loyalty import LoyaltyProgramSpec
from talon_one_emulator.money import round_money

__all__ = [
    "EPSILON",
    "Account",
    "Balance",
    "CardRecord",
    "Ledger",
    "Status",
    "Transaction",
    "balance",
]

Status = Literal["pending", "active", "expired"]

# Points are compared with this tolerance: balances are sums of cents.
EPSILON = 1e-9
_NEVER = datetime.max.replace(tzinfo=None)


@dataclass(slots=True, eq=False)
class Transaction:
    """One entry of a ledger's log.

    Attributes:
        kind: ``addition`` or ``subtraction``.
        reason: ``earn`` (addLoyaltyPoints), ``spend`` (deductLoyaltyPoints), ``rollback``
            (of an addition), ``refund`` (rollback of a deduction).
        start: additions: when the points become active (``None``: at once).
        expiry: additions: when they expire (``None``: never).
        remaining: additions: points not spent (nor rolled back) yet.
        taken: subtractions: the additions their points came from, and how many.
        overdraft: subtractions: points taken beyond the balance (a negative balance).
    """

    id: int
    uuid: str
    created: datetime
    program_id: int
    subledger_id: str
    kind: Literal["addition", "subtraction"]
    reason: Literal["earn", "spend", "rollback", "refund"]
    amount: float
    name: str
    profile_id: str | None = None
    card: str | None = None
    session_id: str | None = None
    event_id: int | None = None
    ruleset_id: int | None = None
    rule_name: str | None = None
    start: datetime | None = None
    expiry: datetime | None = None
    awaits_activation: bool = False
    validity_days: int | None = None
    remaining: float = 0.0
    taken: list[tuple[Transaction, float]] = field(default_factory=list)
    overdraft: float = 0.0
    position: int = 0
    """Its index in the ledger's log."""

    @property
    def timed(self) -> bool:
        """Whether the status of its points changes with time or activation."""
        return self.awaits_activation or self.start is not None or self.expiry is not None

    def status(self, at: datetime) -> Status:
        """The status of an addition's points at ``at``."""
        if self.awaits_activation or (self.start is not None and self.start > at):
            return "pending"
        if self.expiry is not None and self.expiry <= at:
            return "expired"
        return "active"


@dataclass(slots=True)
class Ledger:
    """The main ledger or one subledger of an account.

    Points whose status never changes (active at once, never expiring: most programs) are
    summed as they change, so a customer with a long history costs nothing per evaluation;
    a ledger with dated or pending points (``timed``) is scanned, and the result kept until the
    next change or the next start or expiry date.

    Attributes:
        timed: some addition has a start or expiry date or awaits activation.
        remaining: the unspent points of every addition.
        spent: points spent by deductions, minus those refunded.
        head: (untimed ledgers) no addition before this index has points left.
        last: when its newest transaction was created.
        cache: (timed ledgers) the last balance computed at or after ``last``, when, and until
            when it holds (``None``: forever).
    """

    transactions: list[Transaction] = field(default_factory=list)
    negative: float = 0.0
    timed: bool = False
    remaining: float = 0.0
    spent: float = 0.0
    head: int = 0
    last: datetime | None = None
    cache: tuple[Balance, datetime, datetime | None] | None = None

    def append(self, tx: Transaction, now: datetime) -> None:
        tx.position = len(self.transactions)
        self.transactions.append(tx)
        if tx.kind == "addition" and tx.timed:
            self.timed = True
        self.changed(now)

    def changed(self, now: datetime) -> None:
        self.cache = None
        if self.last is None or now > self.last:
            self.last = now

    def adjust(self, tx: Transaction, delta: float) -> None:
        """Change the unspent points of an addition."""
        tx.remaining = round_money(tx.remaining + delta)
        self.remaining = round_money(self.remaining + delta)
        if delta > 0 and tx.position < self.head:
            self.head = tx.position
        self.cache = None

    def sources(self, now: datetime, first: Transaction | None) -> Iterator[Transaction]:
        """The additions points are taken from, in order: ``first``, then the active ones that
        expire first (oldest first among equals)."""
        if first is not None:
            yield first
        if self.timed:
            yield from sorted(
                (
                    tx
                    for tx in self.transactions
                    if tx.kind == "addition"
                    and tx is not first
                    and tx.remaining > EPSILON
                    and tx.status(now) == "active"
                ),
                key=_by_expiry,
            )
            return
        transactions = self.transactions
        while self.head < len(transactions) and transactions[self.head].remaining <= EPSILON:
            self.head += 1
        for index in range(self.head, len(transactions)):
            tx = transactions[index]
            if tx.kind == "addition" and tx is not first and tx.remaining > EPSILON:
                yield tx


@dataclass(frozen=True, slots=True)
class Balance:
    active: float = 0.0
    pending: float = 0.0
    expired: float = 0.0
    spent: float = 0.0
    negative: float = 0.0


@dataclass(slots=True)
class Account:
    """The ledgers of one profile or one card in one program."""

    joined: datetime
    ledgers: dict[str, Ledger] = field(default_factory=dict)

    def ledger(self, subledger_id: str) -> Ledger:
        found = self.ledgers.get(subledger_id)
        if found is None:
            found = self.ledgers[subledger_id] = Ledger()
        return found


@dataclass(slots=True)
class CardRecord:
    """A loyalty card of a card-based program."""

    id: int
    identifier: str
    program: LoyaltyProgramSpec
    status: str
    created: datetime
    modified: datetime
    account: Account
    profiles: dict[str, datetime] = field(default_factory=dict)
    """Linked profile integration IDs → when they were linked."""
    batch_id: str | None = None


def balance(ledger: Ledger | None, at: datetime) -> Balance:
    """The balances of a ledger at ``at`` (transactions created later do not count)."""
    if ledger is None:
        return Balance()
    if not ledger.timed and (ledger.last is None or at >= ledger.last):
        return Balance(
            ledger.remaining, 0.0, 0.0, round_money(max(0.0, ledger.spent)), ledger.negative
        )
    cache = ledger.cache
    if cache is not None and cache[1] <= at and (cache[2] is None or at < cache[2]):
        return cache[0]
    active = pending = expired = spent = 0.0
    next_change: datetime | None = None
    for tx in ledger.transactions:
        if tx.created > at:
            continue
        if tx.kind == "addition":
            if tx.reason == "refund":
                spent -= tx.amount
                continue
            status = tx.status(at)
            if status == "active":
                active += tx.remaining
            elif status == "pending":
                pending += tx.remaining
            else:
                expired += tx.remaining
            if tx.remaining > 0:
                for moment in (tx.start, tx.expiry):
                    if (
                        moment is not None
                        and moment > at
                        and (next_change is None or moment < next_change)
                    ):
                        next_change = moment
        elif tx.reason == "spend":
            spent += tx.amount
    result = Balance(
        round_money(active),
        round_money(pending),
        round_money(expired),
        round_money(max(0.0, spent)),
        round_money(ledger.negative),
    )
    if ledger.last is None or at >= ledger.last:
        ledger.cache = (result, at, next_change)
    return result


def _by_expiry(tx: Transaction) -> tuple[datetime, int]:
    return (tx.expiry.replace(tzinfo=None) if tx.expiry is not None else _NEVER), tx.id
