"""Typed models of what the worker writes, in their Avro form: the effects envelope
(``schemas/effects-envelope.avsc``) and the DLQ envelope (``schemas/dlq-envelope.avsc``).

The input events have theirs in :mod:`talon_stream.core._events`. Each model is paired with the
record of
the same name in ``schemas/``; ``tests/unit/test_avro_schemas.py`` checks that the two have the
same fields, optionality and types, so they cannot drift. A downstream consumer in Python can
validate what :class:`~confluent_kafka.schema_registry.avro.AvroDeserializer` returns with them.

Open-ended Talon.One objects are JSON text in Avro (fields marked ``"talon.stream.json": true``)
and plain JSON values here: an effect's ``props``, the fields of an effect the schema does not
name (``extra``), created coupons and referrals.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    "CoalescedInto",
    "DlqEnvelope",
    "DlqHeader",
    "Effect",
    "EffectsEnvelope",
    "EnvelopeSource",
    "SessionSummary",
    "SupersededBy",
]


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class EnvelopeSource(_Model):
    """Where the processed event came from."""

    event_id: str
    type: str
    #: RFC 3339, as the input event gave it.
    occurred_at: str
    topic: str
    partition: int
    offset: int
    #: The input record's Kafka timestamp, RFC 3339 with milliseconds.
    timestamp: str | None = None


class Effect(_Model):
    """One Talon.One effect. Its common fields are typed; ``props`` is any JSON value; ``extra``
    holds every field Talon.One returned that this model does not name."""

    campaign_id: int | None = None
    ruleset_id: int | None = None
    rule_index: int | None = None
    rule_name: str | None = None
    effect_type: str
    triggered_by_coupon: int | None = None
    triggered_for_catalog_item: int | None = None
    condition_index: int | None = None
    evaluation_group_id: int | None = Field(default=None, alias="evaluationGroupID")
    evaluation_group_mode: str | None = None
    campaign_revision_id: int | None = None
    campaign_revision_version_id: int | None = None
    selected_price_type: str | None = None
    selected_price: float | None = None
    adjustment_reference_id: str | None = None
    props: Any = None
    extra: dict[str, Any] | None = None


class SessionSummary(_Model):
    """The customer session as Talon.One returned it."""

    integration_id: str | None = None
    profile_id: str | None = None
    state: str | None = None
    total: float | None = None
    cart_item_total: float | None = None
    additional_cost_total: float | None = None
    update_count: int | None = None
    coupon_codes: list[str] | None = None
    referral_code: str | None = None
    updated: str | None = None


class SupersededBy(_Model):
    """Why no call was made: the newer event already applied to the record's session."""

    event_id: str | None = None
    type: str | None = None
    occurred_at: str | None = None
    envelope_id: str | None = None
    session_state: str | None = None
    reason: str


class CoalescedInto(_Model):
    """The call this record's cart update was sent in: the record it was made for."""

    envelope_id: str
    event_id: str
    records: int


class EffectsEnvelope(_Model):
    """One processed event and what Talon.One answered (``docs/effects.md``)."""

    envelope_id: str
    envelope_version: int
    source: EnvelopeSource
    operation: str
    status: int
    profile_id: str | None = None
    session_id: str | None = None
    effects: list[Effect]
    created_coupons: list[dict[str, Any]] = Field(default_factory=list)
    created_referrals: list[dict[str, Any]] = Field(default_factory=list)
    session: SessionSummary | None = None
    #: Set when the record was not sent (``status`` 0, no effects).
    superseded: SupersededBy | None = None
    #: Set when the record was sent in one call with others of its session.
    coalesced_into: CoalescedInto | None = None
    #: Set when unknown attributes were left out of the call (``Entity.name``).
    dropped_attributes: list[str] | None = None
    processing_ms: float
    #: RFC 3339 with milliseconds.
    processed_at: str


class DlqHeader(_Model):
    """One header of the dead-lettered record."""

    name: str
    value: bytes


class DlqEnvelope(_Model):
    """A dead-lettered record (when the DLQ topic's format is Avro): the original key, value
    and headers, and why it failed — what the ``talon-stream.*`` headers also say."""

    key: bytes | None = None
    #: ``None`` when the value was over ``max_record_bytes`` (``value_omitted_bytes`` says).
    value: bytes | None = None
    headers: list[DlqHeader] = Field(default_factory=list)
    error_class: str
    error_message: str
    source_topic: str
    source_partition: int
    source_offset: int
    source_timestamp: AwareDatetime | None = None
    attempts: int
    first_attempt_at: AwareDatetime
    last_attempt_at: AwareDatetime
    worker_version: str
    http_status: int | None = None
    http_body: str | None = None
    talon_operation: str | None = None
    value_omitted_bytes: int | None = None
