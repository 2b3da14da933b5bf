"""Request paths: an integration ID is always fully percent-encoded, whatever it holds."""

from __future__ import annotations

from urllib.parse import quote, unquote

from hypothesis import given
from hypothesis import strategies as st

from talon_stream.core._calls import Operation


@given(integration_id=st.text(max_size=40), operation=st.sampled_from(list(Operation)))
def test_the_id_in_the_path_is_percent_encoded_as_quote_does(
    integration_id: str, operation: Operation
) -> None:
    path = operation.path(integration_id)
    template = {
        Operation.UPDATE_CUSTOMER_SESSION: "/v2/customer_sessions/{}",
        Operation.RETURN_CART_ITEMS: "/v2/customer_sessions/{}/returns",
        Operation.REOPEN_CUSTOMER_SESSION: "/v2/customer_sessions/{}/reopen",
        Operation.UPDATE_CUSTOMER_PROFILE: "/v2/customer_profiles/{}",
        Operation.UPDATE_CUSTOMER_PROFILES: "/v2/customer_profiles",
        Operation.TRACK_EVENT: "/v2/events",
        Operation.TRACK_EVENT_V3: "/v3/events",
        Operation.GET_EVENT_V3: "/v3/events/{}",
        Operation.DELETE_CUSTOMER_DATA: "/v1/customer_data/{}",
        Operation.SYNC_CATALOG: "/v1/catalogs/{}/sync",
        Operation.GET_CUSTOMER_SESSION: "/v2/customer_sessions/{}",
    }[operation]
    assert path == template.format(quote(integration_id, safe=""))
    if "{}" in template:
        encoded = path.removeprefix(template.split("{}")[0]).removesuffix(template.split("{}")[1])
        assert "/" not in encoded
        assert unquote(encoded) == integration_id


def test_plain_ids_stay_as_they_are_and_others_are_encoded() -> None:
    assert Operation.UPDATE_CUSTOMER_SESSION.path("s-1_a.b~c") == "/v2/customer_sessions/s-1_a.b~c"
    assert Operation.UPDATE_CUSTOMER_PROFILE.path("c 1/ä") == "/v2/customer_profiles/c%201%2F%C3%A4"
