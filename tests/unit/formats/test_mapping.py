"""Mapping files: a shop's own documents → canonical events, and every error a user can meet."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from talon_stream._exceptions import ConfigurationError, DecodeError, MappingError
from talon_stream.config._settings import load_settings
from talon_stream.core._events import CartUpdated, Event
from talon_stream.core._records import InputRecord
from talon_stream.core._translate import TranslationOptions
from talon_stream.formats.mapping._mappings import (
    CONVERSIONS,
    Mappings,
    load_mappings,
    parse_mappings,
)
from talon_stream.formats.mapping._values import convert
from talon_stream.processing._processor import RecordProcessor
from talon_stream.processing._worker import Worker
from tests.fakes import make_processor

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "deploy" / "mappings"
FIXTURES = ROOT / "tests" / "fixtures" / "mapping"

SHOPIFY = load_mappings(EXAMPLES / "shopify-carts.yaml")
COMMERCETOOLS = load_mappings(EXAMPLES / "commercetools-orders.yaml")


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return document


def canonical(event: Event) -> dict[str, Any]:
    """The event as its canonical JSON document."""
    return event.model_dump(mode="json", by_alias=True, exclude_none=True)


def mappings(text: str, source: str = "test.yaml") -> Mappings:
    return parse_mappings(textwrap.dedent(text), source=source)


def one_rule(fields: str, *, when: str | None = None, event_type: str = "cart.updated") -> str:
    """A file with one mapping ("m", topic "t") and one rule ("r") building ``fields``."""
    when_line = f"\n        when: {json.dumps(when)}" if when is not None else ""
    body = textwrap.indent(textwrap.dedent(fields).strip(), " " * 10)
    return (
        "mappings:\n  - name: m\n    topics: [t]\n    rules:\n      - name: r"
        f"{when_line}\n        type: {event_type}\n        fields:\n{body}\n"
    )


IDS = """
sessionId: s
occurredAt: at
eventId: id
"""
DOC = {"s": "session-1", "at": "2026-03-02T10:00:00Z", "id": "e-1"}


def build(fields: str, document: dict[str, Any], **rule: Any) -> dict[str, Any]:
    text = one_rule(IDS + textwrap.dedent(fields), **rule)
    return canonical(mappings(text).apply("t", {**DOC, **document}))


def failure(fields: str, document: dict[str, Any], **rule: Any) -> MappingError:
    with pytest.raises(MappingError) as caught:
        build(fields, document, **rule)
    return caught.value


def config_error(text: str) -> str:
    with pytest.raises(ConfigurationError) as caught:
        mappings(text)
    return str(caught.value) + "\n"


# --- the two worked examples -----------------------------------------------------------------


def test_a_shopify_cart_with_a_customer_becomes_its_cart_updated_event() -> None:
    event = SHOPIFY.apply("shopify.carts", fixture("shopify-cart-update"))
    assert canonical(event) == {
        "type": "cart.updated",
        "eventId": "c1-7f3b9a4e2d6c4b1a8e5f0d2c9b7a6e41@2026-03-02T09:14:27-05:00",
        "occurredAt": "2026-03-02T09:14:27-05:00",
        "profileId": "7012345678901",
        "sessionId": "c1-7f3b9a4e2d6c4b1a8e5f0d2c9b7a6e41",
        "payload": {
            "cartItems": [
                {"sku": "rsb002", "quantity": 2, "name": "Red Spring Blouse - M", "price": 49.0},
                # No SKU on this line: its variant id names it.
                {"sku": "44321098765499", "quantity": 1, "name": "Canvas tote bag", "price": 15.0},
            ],
            "attributes": {"channel": "shopify"},
        },
    }


def test_a_guest_shopify_cart_has_no_profile() -> None:
    event = SHOPIFY.apply("shopify.carts", fixture("shopify-cart-guest"))
    assert canonical(event) == {
        "type": "cart.updated",
        "eventId": "c1-0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b@2026-03-02T16:40:05.512Z",
        "occurredAt": "2026-03-02T16:40:05.512000Z",
        "sessionId": "c1-0e9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b",
        "payload": {
            "cartItems": [
                {"sku": "dtr003", "quantity": 3, "name": "Denim Trousers - 32/32", "price": 74.0}
            ],
            "attributes": {"channel": "shopify"},
        },
    }


def test_an_emptied_shopify_cart_is_still_a_cart() -> None:
    document = {**fixture("shopify-cart-guest"), "line_items": []}
    event = SHOPIFY.apply("shopify.carts", document)
    assert isinstance(event, CartUpdated)
    assert event.payload.cart_items == []


def test_a_shopify_cart_without_its_token_names_the_rule_field_and_expression() -> None:
    document = fixture("shopify-cart-update")
    del document["token"]
    with pytest.raises(MappingError) as caught:
        SHOPIFY.apply("shopify.carts", document)
    error = caught.value
    assert str(error) == (
        'mapping "shopify-carts", rule "cart-updated" → sessionId: expression "token" gave nothing'
    )
    assert (error.mapping, error.rule, error.field, error.expression) == (
        "shopify-carts",
        "cart-updated",
        "sessionId",
        "token",
    )


def test_a_commercetools_order_created_message_becomes_order_placed() -> None:
    event = COMMERCETOOLS.apply("commercetools.orders", fixture("commercetools-order-created"))
    assert canonical(event) == {
        "type": "order.placed",
        "eventId": "2f8c1a7e-0b9d-4c3a-9e51-6d0f3b7a2c11",
        "occurredAt": "2026-03-02T14:05:11.123000Z",
        "profileId": "b4e5c6d7-8f90-4a1b-b2c3-d4e5f6a7b8c9",
        "sessionId": "7d1e0f3c-5a2b-4e8f-9c6d-1b2a3c4d5e6f",
        "payload": {
            "cartItems": [
                {
                    "sku": "rsb002",
                    "quantity": 1,
                    "name": "Red Spring Blouse",
                    "price": 49.0,
                    "attributes": {"color": "red"},
                },
                {"sku": "dtr003", "quantity": 2, "name": "Denim Trousers", "price": 74.0},
            ],
            "additionalCosts": {"shipping": {"price": 4.95}},
            "attributes": {"channel": "web"},
        },
    }


def test_an_imported_anonymous_commercetools_order_without_shipping() -> None:
    document = fixture("commercetools-order-created")
    document["type"] = "OrderImported"
    del document["order"]["customerId"]
    del document["order"]["shippingInfo"]
    event = canonical(COMMERCETOOLS.apply("commercetools.orders", document))
    assert event["type"] == "order.placed"
    assert "profileId" not in event
    assert "additionalCosts" not in event["payload"]


def test_a_commercetools_cancellation_becomes_order_cancelled() -> None:
    event = COMMERCETOOLS.apply(
        "commercetools.orders", fixture("commercetools-order-state-changed")
    )
    assert canonical(event) == {
        "type": "order.cancelled",
        "eventId": "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
        "occurredAt": "2026-03-03T09:30:00Z",
        "sessionId": "7d1e0f3c-5a2b-4e8f-9c6d-1b2a3c4d5e6f",
        "payload": {"reason": "commercetools order state Open → Cancelled"},
    }


def test_a_commercetools_message_no_rule_recognises_is_an_error() -> None:
    document = {**fixture("commercetools-order-state-changed"), "orderState": "Complete"}
    with pytest.raises(MappingError) as caught:
        COMMERCETOOLS.apply("commercetools.orders", document)
    assert str(caught.value) == (
        'mapping "commercetools-orders": no rule recognises this document; tried order-created '
        "(when \"type == 'OrderCreated' || type == 'OrderImported'\"), order-cancelled "
        "(when \"type == 'OrderStateChanged' && orderState == 'Cancelled'\")"
    )
    assert caught.value.rule is None


def test_a_commercetools_line_without_a_sku_says_which_line() -> None:
    document = fixture("commercetools-order-created")
    del document["order"]["lineItems"][1]["variant"]["sku"]
    with pytest.raises(MappingError) as caught:
        COMMERCETOOLS.apply("commercetools.orders", document)
    assert str(caught.value) == (
        'mapping "commercetools-orders", rule "order-created" → payload.cartItems[1].sku: '
        'expression "variant.sku" gave nothing'
    )


def test_both_examples_fit_in_one_file() -> None:
    combined = {
        "mappings": [
            *load_yaml(EXAMPLES / "shopify-carts.yaml")["mappings"],
            *load_yaml(EXAMPLES / "commercetools-orders.yaml")["mappings"],
        ]
    }
    both = parse_mappings(orjson.dumps(combined).decode())  # JSON is YAML
    assert both.topics == {"shopify.carts", "commercetools.orders"}


def load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


# --- Hypothesis: generated Shopify carts -----------------------------------------------------

prices = st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False)
line_items = st.fixed_dictionaries(
    {
        "sku": st.one_of(st.just(""), st.text(min_size=1, max_size=30)),
        "variant_id": st.integers(min_value=1, max_value=2**53),
        "quantity": st.integers(min_value=1, max_value=100),
        "price": prices.map(lambda d: f"{d:.2f}"),
        "title": st.text(max_size=40),
    }
)
carts = st.fixed_dictionaries(
    {
        "token": st.text(alphabet="0123456789abcdef-", min_size=1, max_size=40),
        # Shopify's offsets are whole minutes (no historical local mean times).
        "updated_at": st.datetimes(
            min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.timezones()
        ).map(lambda d: d.isoformat()),
        "line_items": st.lists(line_items, max_size=20),
    },
    optional={"customer": st.fixed_dictionaries({"id": st.integers(1, 2**53)})},
)


@given(carts)
def test_generated_shopify_carts_map_to_valid_cart_updates(cart: dict[str, Any]) -> None:
    event = SHOPIFY.apply("shopify.carts", cart)
    assert isinstance(event, CartUpdated)
    assert event.session_id == cart["token"]
    customer = cart.get("customer")
    assert event.profile_id == (str(customer["id"]) if customer else None)
    items = event.payload.cart_items or []
    assert [(item.sku, item.quantity) for item in items] == [
        (line["sku"] or str(line["variant_id"]), line["quantity"]) for line in cart["line_items"]
    ]
    assert [Decimal(str(item.price)) for item in items] == [
        Decimal(line["price"]) for line in cart["line_items"]
    ]


# --- fields: expressions, constants, nesting, optional, default ------------------------------


def test_constants_and_dotted_names_build_nested_objects() -> None:
    event = build(
        """
        payload.attributes.channel: {const: web}
        payload.additionalCosts.shipping.price: {const: 4.95}
        payload.couponCodes: codes
        """,
        {"codes": ["xmas20"]},
    )
    assert event["payload"] == {
        "couponCodes": ["xmas20"],
        "additionalCosts": {"shipping": {"price": 4.95}},
        "attributes": {"channel": "web"},
    }


def test_an_optional_field_that_gives_nothing_is_left_out() -> None:
    event = build(
        """
        profileId: {expr: customer.id, optional: true}
        payload.referralCode: {expr: referral, optional: true}
        """,
        {},
    )
    assert "profileId" not in event
    assert event["payload"] == {}


def test_a_default_stands_in_for_nothing_and_is_not_converted() -> None:
    fields = "payload.attributes.total: {expr: total, convert: cents, default: 0.5}"
    assert build(fields, {})["payload"]["attributes"] == {"total": 0.5}
    assert build(fields, {"total": 250})["payload"]["attributes"] == {"total": 2.5}


def test_a_required_field_that_gives_nothing_names_rule_field_and_expression() -> None:
    error = failure("payload.couponCodes: coupons[].code", {})
    assert str(error) == (
        'mapping "m", rule "r" → payload.couponCodes: expression "coupons[].code" gave nothing'
    )


def test_an_expression_that_fails_on_a_document_is_a_mapping_error() -> None:
    error = failure("payload.referralCode: \"join('-', [a, b])\"", {"a": "x"})
    assert str(error).startswith(
        'mapping "m", rule "r" → payload.referralCode: expression "join(\'-\', [a, b])" failed: '
        "In function join(), invalid type"
    )


def test_the_built_event_meets_the_canonical_checks_and_messages() -> None:
    error = failure(
        """
        payload.cartItems:
          each: lines
          fields: {sku: sku, quantity: qty}
        """,
        {"lines": [{"sku": "A", "qty": 0}]},
    )
    assert str(error) == (
        'mapping "m", rule "r": invalid event: cart.updated.payload.cartItems.0.quantity: '
        "Input should be greater than or equal to 1"
    )
    assert error.field is None


# --- each ------------------------------------------------------------------------------------


def test_each_builds_one_object_per_element() -> None:
    event = build(
        """
        payload.cartItems:
          each: "lines[?qty > `0`]"
          fields:
            sku: sku
            quantity: qty
            attributes.color: {expr: colour, optional: true}
        """,
        {
            "lines": [
                {"sku": "A", "qty": 2, "colour": "red"},
                {"sku": "B", "qty": 0},
                {"sku": "C", "qty": 1},
            ]
        },
    )
    assert event["payload"]["cartItems"] == [
        {"sku": "A", "quantity": 2, "attributes": {"color": "red"}},
        {"sku": "C", "quantity": 1},
    ]


def test_each_that_gives_nothing_or_no_list() -> None:
    fields = """
    payload.cartItems:
      each: lines
      fields: {sku: sku, quantity: qty}
    """
    assert str(failure(fields, {})) == (
        'mapping "m", rule "r" → payload.cartItems: expression "lines" gave nothing'
    )
    assert str(failure(fields, {"lines": {"sku": "A"}})) == (
        'mapping "m", rule "r" → payload.cartItems: expression "lines" gave an object, not a list'
    )
    optional = fields.replace("each: lines", "each: lines\n      optional: true")
    assert "cartItems" not in build(optional, {})["payload"]


# --- when ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "recognised"),
    [
        *[(0, True), ("x", True), ([1], True), ({"a": 1}, True), (True, True)],
        *[(None, False), (False, False), ("", False), ([], False), ({}, False)],
    ],
)
def test_when_is_truthy_in_jmespaths_sense(value: Any, recognised: bool) -> None:
    text = one_rule(IDS, when="flag")
    document = {**DOC, "flag": value}
    if recognised:
        assert mappings(text).apply("t", document).type == "cart.updated"
    else:
        with pytest.raises(MappingError, match="no rule recognises this document"):
            mappings(text).apply("t", document)


def test_the_first_rule_that_matches_wins_and_a_rule_without_when_takes_the_rest() -> None:
    ids = textwrap.indent(IDS.strip(), " " * 10)
    text = f"""\
mappings:
  - name: m
    topics: [t]
    rules:
      - name: placed
        when: "kind == 'order'"
        type: order.placed
        fields:
{ids}
      - name: also-order
        when: "kind == 'order' || kind == 'cart'"
        type: order.cancelled
        fields:
{ids}
      - name: anything-else
        type: cart.updated
        fields:
{ids}
"""
    compiled = mappings(text)
    assert compiled.apply("t", {**DOC, "kind": "order"}).type == "order.placed"
    assert compiled.apply("t", {**DOC, "kind": "cart"}).type == "order.cancelled"
    assert compiled.apply("t", {**DOC, "kind": "other"}).type == "cart.updated"


def test_a_when_that_fails_names_it() -> None:
    text = one_rule(IDS, when="starts_with(kind, 'order')")
    with pytest.raises(MappingError) as caught:
        mappings(text).apply("t", {**DOC, "kind": 3})
    assert str(caught.value).startswith(
        'mapping "m", rule "r" → when: expression "starts_with(kind, \'order\')" failed:'
    )


# --- conversions -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "value", "expected"),
    [
        ("cents", 4990, 49.9),
        ("cents", "4990", 49.9),
        ("cents", 4990.0, 49.9),
        ("cents", -5, -0.05),
        ("number", "19.99", 19.99),
        ("number", " 3 ", 3),
        ("number", 2.5, 2.5),
        ("number", "1e3", 1000.0),
        ("integer", "3", 3),
        ("integer", 3.0, 3),
        ("string", 7012345678901, "7012345678901"),
        ("string", 1234567.0, "1234567"),
        ("string", 2.5, "2.5"),
        ("string", "x", "x"),
        ("number", ["1", "2.5"], [1, 2.5]),
    ],
)
def test_conversions(how: str, value: Any, expected: Any) -> None:
    result = convert(value, how)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("how", "value", "reason"),
    [
        ("cents", 49.5, "not a whole number"),
        ("cents", "19.99", "not a whole number"),
        ("number", "abc", "not a number"),
        ("number", "nan", "not a finite number"),
        ("number", "1_000", "not a number"),
        ("number", True, "a boolean cannot be converted"),
        ("integer", 3.5, "not a whole number"),
        ("string", {"id": 1}, "an object cannot be converted"),
    ],
)
def test_values_a_conversion_cannot_read(how: str, value: Any, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        convert(value, how)


def test_a_conversion_failure_names_the_value_and_the_conversion() -> None:
    error = failure("payload.attributes.total: {expr: total, convert: cents}", {"total": "4.99"})
    assert str(error) == (
        'mapping "m", rule "r" → payload.attributes.total: expression "total" gave "4.99": '
        "not a whole number (convert: cents)"
    )


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_cents_give_the_exact_decimal_amount(cents: int) -> None:
    amount = convert(cents, "cents")
    assert Decimal(repr(amount)) == Decimal(cents) / 100


def test_the_documented_conversions() -> None:
    assert CONVERSIONS == ("cents", "number", "integer", "string")


# --- decoding records ------------------------------------------------------------------------


def test_decode_parses_json_and_maps_it() -> None:
    value = (FIXTURES / "shopify-cart-guest.json").read_bytes()
    assert SHOPIFY.decode("shopify.carts", value).type == "cart.updated"
    with pytest.raises(DecodeError, match="not valid JSON"):
        SHOPIFY.decode("shopify.carts", b'{"token": ')
    with pytest.raises(DecodeError, match="has no value"):
        SHOPIFY.decode("shopify.carts", None)


def test_only_the_listed_topics_are_mapped() -> None:
    assert SHOPIFY.topics == {"shopify.carts"}
    with pytest.raises(KeyError):
        SHOPIFY.apply("shop.carts", {})


def input_record(topic: str, value: bytes) -> InputRecord:
    return InputRecord(
        topic=topic, partition=0, offset=1, key=b"k", value=value, headers=[], timestamp_ms=0
    )


def processor(mapped: Mappings | None) -> RecordProcessor:
    return make_processor(
        object(),  # type: ignore[arg-type]  # prepare() neither calls nor publishes
        object(),  # type: ignore[arg-type]
        effects_topic="fx",
        dlq_topic="dlq",
        options=TranslationOptions(),
        mappings=mapped,
    )


def test_the_processor_maps_records_of_mapped_topics_and_decodes_the_others() -> None:
    records = processor(SHOPIFY)
    shopify = (FIXTURES / "shopify-cart-update.json").read_bytes()
    prepared = records.prepare(input_record("shopify.carts", shopify))
    assert prepared.error is None
    assert prepared.call is not None
    assert prepared.call.session_id == "c1-7f3b9a4e2d6c4b1a8e5f0d2c9b7a6e41"

    canonical_record = orjson.dumps(
        {"eventId": "e", "type": "cart.updated", "occurredAt": DOC["at"], "sessionId": "s-9"}
    )
    assert records.prepare(input_record("shop.carts", canonical_record)).error is None
    # A Shopify document on a canonical topic is a canonical error, not mapped.
    unmapped = records.prepare(input_record("shop.carts", shopify))
    assert isinstance(unmapped.error, DecodeError)
    assert not isinstance(unmapped.error, MappingError)


def test_the_processor_keeps_the_mapping_error_for_the_dlq() -> None:
    document = fixture("shopify-cart-update")
    del document["token"]
    prepared = processor(SHOPIFY).prepare(input_record("shopify.carts", orjson.dumps(document)))
    assert isinstance(prepared.error, MappingError)
    assert prepared.call is None
    assert 'sessionId: expression "token" gave nothing' in str(prepared.error)


def test_without_a_mapping_every_topic_is_canonical() -> None:
    shopify = (FIXTURES / "shopify-cart-update.json").read_bytes()
    prepared = processor(None).prepare(input_record("shopify.carts", shopify))
    assert isinstance(prepared.error, DecodeError)


# --- configuration and start-up --------------------------------------------------------------


def test_the_setting_names_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TALON_STREAM_MAPPING_FILE", str(EXAMPLES / "shopify-carts.yaml"))
    assert load_settings().mapping_file == EXAMPLES / "shopify-carts.yaml"
    monkeypatch.setenv("TALON_STREAM_MAPPING_FILE", "")
    assert load_settings().mapping_file is None
    monkeypatch.delenv("TALON_STREAM_MAPPING_FILE")
    assert load_settings().mapping_file is None


def test_the_worker_loads_the_file_at_start_up(tmp_path: Path) -> None:
    settings = load_settings(talon_api_key="k", mapping_file=EXAMPLES / "commercetools-orders.yaml")
    worker = Worker(settings)
    assert worker.mappings is not None
    assert worker.mappings.topics == {"commercetools.orders"}
    assert Worker(load_settings(talon_api_key="k")).mappings is None

    broken = tmp_path / "broken.yaml"
    broken.write_text(one_rule(IDS.replace("sessionId: s", "sessionId: 'tok en'")))
    with pytest.raises(ConfigurationError, match=r"broken\.yaml is invalid"):
        Worker(load_settings(talon_api_key="k", mapping_file=broken))


def test_a_missing_file_says_which_and_what_to_check(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_mappings(tmp_path / "nope.yaml")
    assert str(caught.value) == (
        f"mapping file {tmp_path / 'nope.yaml'} cannot be read (No such file or directory): "
        "check TALON_STREAM_MAPPING_FILE"
    )


def test_bad_yaml_says_where() -> None:
    text = config_error("mappings:\n  - name: m\n    topics: [t\n")
    assert text.startswith("mapping file test.yaml is not valid YAML: ")
    assert "(line 4, column 1)" in text


def test_a_key_given_twice_is_refused() -> None:
    text = config_error(one_rule(IDS + "\nsessionId: token"))
    assert text.startswith("mapping file test.yaml is not valid YAML: 'sessionId' is given twice")


def test_yaml_anchors_and_merge_keys_still_work() -> None:
    text = """\
    mappings:
      - name: m
        topics: [t]
        rules:
          - name: first
            when: first
            type: cart.updated
            fields: &ids
              sessionId: s
              occurredAt: at
              eventId: id
          - name: second
            type: order.placed
            fields:
              <<: *ids
              sessionId: other
    """
    compiled = mappings(text)
    assert compiled.apply("t", {**DOC, "first": True}).session_id == "session-1"
    second = compiled.apply("t", {**DOC, "other": "session-2"})
    assert (second.type, second.session_id) == ("order.placed", "session-2")


def test_an_empty_file() -> None:
    assert config_error("") == "mapping file test.yaml is empty: it needs a `mappings:` list\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            one_rule(IDS).replace("type: cart.updated", "type: cart.updated\n        whn: x"),
            'mapping "m", rule "r", whn: unknown option \'whn\': expected one of name, when, '
            "type, fields",
        ),
        (
            one_rule(IDS + "profileId: {expr: c, optinal: true}"),
            'mapping "m", rule "r", fields.profileId.optinal: unknown option \'optinal\': '
            "expected one of expr, const, convert, optional, default",
        ),
        (
            one_rule(IDS.replace("sessionId: s", "sessionId: 'tok en'")),
            'mapping "m", rule "r", fields.sessionId: invalid JMESPath expression "tok en": '
            'Unexpected token: en: Parse error at column 4, token "en" (UNQUOTED_IDENTIFIER)\n',
        ),
        (
            one_rule(IDS + 'payload.referralCode: "code == \'x"'),
            "invalid JMESPath expression \"code == 'x\": Unclosed ' delimiter\n",
        ),
        (
            one_rule(IDS + "payload.referralCode: 'codes['"),
            'invalid JMESPath expression "codes[": Incomplete expression\n',
        ),
        (
            one_rule(IDS + "payload.referralCode: lower(code)"),
            'fields."payload.referralCode": invalid JMESPath expression "lower(code)": unknown '
            "function lower(); JMESPath has abs, avg,",
        ),
        (
            one_rule(IDS + "payload.referralCode: 'join(code)'"),
            'invalid JMESPath expression "join(code)": join() takes 2 argument(s), not 1',
        ),
        (
            one_rule(IDS + "payload.referralCode: {expr: code, convert: euros}"),
            "fields.\"payload.referralCode\".convert: Input should be 'cents', 'number', "
            "'integer' or 'string'",
        ),
        (
            one_rule(IDS + "payload.referralCode: 42"),
            'fields."payload.referralCode": a field is a JMESPath expression (a string: quote it)'
            ", {expr: …}, {const: …} or {each: …, fields: …}",
        ),
        (
            one_rule(IDS + "payload.referralCode: {expr: code, const: x}"),
            'fields."payload.referralCode": give `expr` or `const`, not both',
        ),
        (
            one_rule(IDS + "payload.referralCode: {optional: true}"),
            "give `expr` (a JMESPath expression) or `const` (a value)",
        ),
        (
            one_rule(IDS + "payload.referralCode: {const: x, optional: true}"),
            "`convert`, `optional` and `default` go with `expr`, not `const`",
        ),
        (
            one_rule(IDS, event_type="cart.upd"),
            'mapping "m", rule "r", type: unknown event type \'cart.upd\'; expected one of '
            "cart.updated, order.placed,",
        ),
        (
            one_rule(IDS + "type: kind"),
            'mapping "m", rule "r": `type` is the rule\'s own option, not one of its `fields`',
        ),
        (
            one_rule(IDS + "payload.cartItem: items"),
            "field \"payload.cartItem\": unknown field 'cartItem'; payload has cartItems, "
            "couponCodes, referralCode,",
        ),
        (
            one_rule(IDS + "sesionId: s2"),
            "field \"sesionId\": unknown field 'sesionId'; (the event) has eventId, occurredAt, "
            "profileId, sessionId, payload",
        ),
        (
            one_rule(IDS + "payload.additionalCosts.shipping.prize: {const: 1}"),
            "field \"payload.additionalCosts.shipping.prize\": unknown field 'prize'; "
            "payload.additionalCosts.shipping has price",
        ),
        (
            one_rule(IDS + "payload.cartItems.0.sku: sku"),
            'field "payload.cartItems.0.sku": payload.cartItems is a list: build it with '
            "{each: …, fields: …}",
        ),
        (
            one_rule(IDS + "payload.referralCode.x: sku"),
            'field "payload.referralCode.x": payload.referralCode is a single value',
        ),
        (
            one_rule(IDS + "payload: p\npayload.couponCodes: c"),
            'fields "payload" and "payload.couponCodes" overlap',
        ),
        (
            one_rule(IDS + "payload.couponCodes: {each: codes, fields: {code: code}}"),
            'field "payload.couponCodes" is a list of values, not of objects',
        ),
        (
            one_rule(IDS + "payload.referralCode: {each: codes, fields: {code: code}}"),
            'field "payload.referralCode" is not a list: {each: …} builds lists',
        ),
        (
            one_rule(IDS + "payload.cartItems: {each: lines, fields: {sku: sku}}"),
            'each item of "payload.cartItems" needs "payload.cartItems[].quantity": add it to '
            "fields",
        ),
        (
            one_rule(
                IDS + "payload.cartItems: {each: lines, fields: {sku: sku, quantity: q, colr: c}}"
            ),
            "field \"payload.cartItems[].colr\": unknown field 'colr'; payload.cartItems[] has "
            "sku, quantity,",
        ),
        (
            one_rule(IDS.replace("sessionId: s\n", "")),
            'a cart.updated event needs "sessionId": add it to fields',
        ),
        (
            one_rule(IDS.replace("sessionId: s", "sessionId: {expr: s, optional: true}")),
            'a cart.updated event needs "sessionId", which cannot be optional',
        ),
        (
            one_rule(IDS.replace("sessionId: s", "profileId: p"), event_type="customer.event"),
            'a customer.event event needs "payload.eventType": add it to fields',
        ),
        (
            one_rule(IDS.replace("eventId: id\n", "")),
            'a cart.updated event needs "eventId": add it to fields',
        ),
    ],
)
def test_a_broken_rule_stops_the_start_with_what_to_fix(text: str, message: str) -> None:
    error = config_error(text)
    assert error.startswith("mapping file test.yaml is invalid (see docs/mapping.md):\n  ")
    assert message in error, error


def test_mapping_level_mistakes() -> None:
    rule = textwrap.indent(one_rule(IDS).split("rules:\n", 1)[1], "")
    two_rules = one_rule(IDS) + rule.replace("name: r", "name: r", 1)
    assert "two rules are named r: rule names must differ" in config_error(two_rules)

    catch_all = one_rule(IDS) + rule.replace("name: r", "name: later", 1)
    assert (
        "rule 'r' has no `when`, so it takes every document and the rules after it (later) can "
        "never match: give it a `when` or move it last"
    ) in config_error(catch_all)

    first = one_rule(IDS)
    second = first.replace("mappings:\n", "").replace("name: m", "name: n", 1)
    assert "topic 't' is in mappings 'm' and 'n': a topic belongs to one mapping" in config_error(
        first + second
    )
    assert "two mappings are named m" in config_error(first + first.replace("mappings:\n", ""))

    assert 'mapping "m", topics: List should have at least 1 item' in config_error(
        first.replace("topics: [t]", "topics: []")
    )
    assert config_error("mapping: []").endswith(
        "\n  mappings: missing\n  mapping: unknown option 'mapping': expected one of mappings\n"
    )
    assert "mapping #1, name: missing" in config_error(first.replace("name: m\n    ", ""))
