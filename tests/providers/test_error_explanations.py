"""Human explanations of provider error codes (``Provider.explain_error``, looked up by
type with ``receiver.providers.explain_error``): sans-IO."""

from __future__ import annotations

import pytest

from receiver.core.error_codes import GSM_MAP, SMPP_COMMAND_STATUS, SMSC_SPECIFIC
from receiver.providers import (
    PROVIDER_TYPES,
    error_label,
    explain_error,
    plivo,
    sinch,
    twilio,
    vonage,
)


@pytest.mark.parametrize(
    ("provider_type", "code", "words"),
    [
        ("twilio", "30007", "filtered"),
        ("twilio", "30003", "unreachable"),
        ("twilio", "30005", "does not exist"),
        ("twilio", "30006", "landline"),
        ("twilio", "21610", "STOP"),
        ("twilio", "21211", "not a valid phone number"),
        ("twilio", "21614", "not a mobile number"),
        ("twilio", "30034", "10DLC"),
        ("vonage", "2", "temporarily unavailable"),
        ("vonage", "6", "anti-spam"),
        ("vonage", "1050", "barred"),
        ("plivo", "30", "spam"),
        ("plivo", "450", "Geo Permissions"),
        ("plivo", "900", "credit"),
        ("telnyx", "40001", "landline"),
        ("telnyx", "40003", "permanently blocked"),
        ("sinch", "402", "unroutable"),
        ("sinch", "413", "blocked"),
        ("sinch", "0", "delivered"),
        ("infobip", "1", "unknown subscriber"),
        ("infobip", "27", "switched off"),
        ("bird", "34", "system failure"),
        ("jasmin", "ESME_RTHROTTLED", "throttled"),
        ("jasmin", "ESME_RINVDSTADR", "destination address"),
    ],
)
def test_common_codes_are_explained(provider_type: str, code: str, words: str) -> None:
    explanation = explain_error(provider_type, code)
    assert explanation is not None
    assert words.lower() in explanation.lower()


@pytest.mark.parametrize(
    ("provider_type", "code", "same_as"),
    [
        ("twilio", " 30007 ", "30007"),  # surrounding blanks
        ("vonage", "006", "6"),  # zero-padded
        ("infobip", "EC_ABSENT_SUBSCRIBER", "27"),  # the name, when the id was missing
        ("infobip", "ec_unknown_subscriber", "1"),
        ("jasmin", "esme_rthrottled", "ESME_RTHROTTLED"),
    ],
)
def test_codes_are_matched_as_parsers_store_them(provider_type, code, same_as) -> None:
    assert explain_error(provider_type, code) == explain_error(provider_type, same_as) is not None


@pytest.mark.parametrize(
    ("provider_type", "code"),
    [
        ("twilio", "99999"),  # not in our table: no guess
        ("twilio", "3000"),
        ("vonage", "16"),
        ("plivo", "60"),
        ("telnyx", "40007"),
        ("sinch", "409"),
        ("infobip", "EC_SOMETHING_NEW"),
        ("standard", "30007"),  # a Standard Webhooks sender defines its own codes
        ("nosuchtype", "1"),
        ("twilio", None),
        ("twilio", ""),
        ("twilio", "   "),
        ("jasmin", "not a code"),
    ],
)
def test_unknown_codes_have_no_explanation(provider_type: str, code: str | None) -> None:
    assert explain_error(provider_type, code) is None


@pytest.mark.parametrize("code", ["001", "00B", "045", "1"])
def test_an_smpp_receipt_err_is_operator_specific_and_says_so(code: str) -> None:
    assert explain_error("jasmin", code) == SMSC_SPECIFIC


@pytest.mark.parametrize(
    ("kind", "codes"),
    [
        ("twilio", list(twilio.ERROR_MESSAGES)),
        ("vonage", list(vonage.DLR_ERRORS)),
        ("plivo", list(plivo.ERROR_REASONS)),
        ("sinch", [str(code) for code in sinch.ERROR_MESSAGES]),
    ],
)
def test_every_code_a_parser_names_is_explained(kind: str, codes: list[str]) -> None:
    """The parsers fill error_message from their own tables; the console explains the
    same codes, so no code a parser knows shows up unexplained."""
    assert codes
    for code in codes:
        assert explain_error(kind, code) is not None, (kind, code)


def test_every_provider_type_has_a_label() -> None:
    labels = {kind: provider.error_label for kind, provider in PROVIDER_TYPES.items()}
    assert labels == {
        "standard": "code",  # a Standard Webhooks sender's codes are its own
        "twilio": "Twilio",
        "vonage": "Vonage",
        "plivo": "Plivo",
        "telnyx": "Telnyx",
        "sinch": "Sinch",
        "infobip": "Infobip",
        "bird": "MessageBird",
        "jasmin": "SMPP",
        "futuresms": "FutureSMS",
        "relayos": "RelayOS",
        "smstools": "Smstools",
        "txtly": "Txtly",
        "sendcomms": "SendComms",
    }
    assert error_label("twilio") == "Twilio"
    assert error_label("nosuchtype") == "code"


def test_explanations_are_short_plain_sentences() -> None:
    tables = [provider.error_explanations for provider in PROVIDER_TYPES.values()]
    tables.append(SMPP_COMMAND_STATUS)
    assert GSM_MAP in tables
    for table in tables:
        for code, text in table.items():
            assert code.strip() == code and code
            assert 3 < len(text) <= 100, (code, text)
            assert text[0].islower() or text[0].isupper()  # words, not punctuation
            assert not text.endswith("."), (code, text)  # a phrase to put after a colon
