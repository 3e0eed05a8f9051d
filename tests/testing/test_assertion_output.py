"""A failing assertion on values that carry a portal URL or an API key prints neither.

pytest explains a failed ``==`` by drilling into the attrs fields of both sides
and diffing differing strings, which would print both portal URLs. The
package's pytest plugin (loaded wherever it is installed) explains such
comparisons without their contents.
"""

import pytest

pytest_plugins = ["pytester"]

INNER = """
from lattice_stripe.core.codec import decode_session
from lattice_stripe.core.config import ClientConfig


def session(url, sid="bps_1"):
    body = (
        '{"id":"%s","object":"billing_portal.session","configuration":"bpc_1","created":1,'
        '"livemode":false,"customer":"cus_1","url":"%s"}' % (sid, url)
    )
    return decode_session(body.encode())


A = "https://billing.stripe.com/p/session/test_TOKENAAAAAAAAAAAAAAAAAAAAAAAAAAAA1"
B = "https://billing.stripe.com/p/session/test_TOKENAAAAAAAAAAAAAAAAAAAAAAAAAAAA2"
KEY_1 = "sk_test_KEYAAAAAAAAAAAAAAAAA1"
KEY_2 = "sk_test_KEYAAAAAAAAAAAAAAAAA2"


def test_sessions_differing_in_url():
    assert session(A) == session(B)


def test_sessions_differing_in_id_and_url():
    assert session(A, "bps_1") == session(B, "bps_2")


def test_lists_of_sessions():
    assert [session(A)] == [session(B)]


def test_dicts_holding_urls():
    assert {"url": A} == {"url": B}


def test_configs_differing_in_key():
    assert ClientConfig(api_key=KEY_1) == ClientConfig(api_key=KEY_2)


def test_plain_values_still_explained():
    assert {"a": 1} == {"a": 2}
"""


@pytest.mark.parametrize("verbosity", [[], ["-v"], ["-vv"]])
def test_failed_comparisons_of_secret_carrying_values_print_no_secret(
    pytester: pytest.Pytester, verbosity: list[str]
) -> None:
    """Sessions, configs, lists and dicts that differ fail with no URL token or key printed."""
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest("-p", "no:cacheprovider", *verbosity)
    result.assert_outcomes(failed=6)
    output = result.stdout.str()
    assert "TOKENAAAA" not in output
    assert "KEYAAAA" not in output
    # Still a useful failure: which attributes differ, and plain values in full.
    assert "Differing attributes: ['url']" in output
    assert "{'a': 1} == {'a': 2}" in output
