"""Human explanations of the providers' error codes, for the support console.

``explain(provider_type, code)`` answers one short sentence in plain words, or None for
a code we have no documented meaning for. The console then shows the provider's own
``error_message`` instead: a wrong explanation is worse than none, so every entry
below comes from the provider's published table (named above each one) and codes we
could not confirm are left out.

Codes are matched as the parsers store them (``error_code`` is text): leading zeros
and surrounding blanks are ignored for numeric codes, case for named ones.

Where the codes come from, per provider type:

- ``twilio``: ``ErrorCode`` of a status callback, or ``code`` of an API error answer
  (21xxx, when a send is refused). Twilio's error dictionary,
  https://www.twilio.com/docs/api/errors.
- ``vonage``: SMS API delivery receipts carry ``err-code`` 1-99 (support article
  "Vonage SMS Delivery Error Codes and Descriptions"); Messages API callbacks carry
  1000-1120 ("API Errors: Messages API", https://developer.vonage.com/api-errors/messages).
  The two ranges do not overlap, so one table serves both.
- ``plivo``: ``ErrorCode`` (https://www.plivo.com/docs/messaging/troubleshooting/error-codes;
  450 from Plivo's SMS FAQ on Geo Permissions, 900 from Plivo's support article on
  insufficient balance).
- ``telnyx``: ``payload.errors[0].code``, delivery errors 40xxx
  (https://developers.telnyx.com/docs/messaging/messages/error-codes).
- ``sinch``: the delivery report ``code`` (0 delivered, 400 queued, 401 dispatched,
  402-418 failures: Sinch SMS REST API delivery report codes, named as in the Java SDK's
  ``DeliveryReportErrorCode``). Other values are SMPP codes of the carrier.
- ``infobip``: ``error.id`` (or its name when the id is missing). Infobip's handset
  errors use the GSM MAP error codes (3GPP TS 29.002), e.g. 1 ``EC_UNKNOWN_SUBSCRIBER``,
  27 ``EC_ABSENT_SUBSCRIBER`` ("Response status and error codes").
- ``bird``: MessageBird's ``statusErrorCode``, the same GSM MAP codes (Bird, "SMS
  Platform Extended Error Codes": 1 EC_UNKNOWN_SUBSCRIBER ... 34 system failure).
- ``jasmin``: a refused submit's SMPP command status (``ESME_R*``, SMPP 3.4 section
  5.1.3, table 5-2). A receipt's numeric ``err`` is, in Jasmin's words, "a Network
  specific error code or an SMSC error code": its meaning depends on the operator, and
  we say exactly that rather than guess.
- ``futuresms``: DLRs carry no error code; a refused send stores the answer's
  ``error_code``, the coarse category of FutureSMS's error envelope ("Response
  Envelope", https://www.futuresms.net/api-basics/responses), with its ``reason`` and
  ``details`` in the message. Only the categories that reject a message are here.
- ``smstools``: a report's ``delivery_code_detail`` (10 and up), else its delivery code
  (0-9) when that is no progress ("Delivery report codes" and "Delivery report detail
  codes", https://www.smstools.be/en/webhooks: only the detail codes 10 and 11 could be
  read; the report's own ``delivery_code_detail_description`` is stored with the others),
  or the ``error`` of a refused send (102-140, "Handling errors",
  https://www.sms-tools.co.uk/en/sms-gateway-api/handling_errors).
- ``sendcomms``: its webhooks carry no error code (``data.error`` is text), so a code here
  is the ``error.code`` of a refused send (400), from SendComms' "Error Handling" page
  (https://docs.sendcomms.com/docs/errors).
- ``standard``: the sender of Standard Webhooks defines its own codes; none is known here.
- ``relayos``: RelayOS documents no error codes (``message.failed`` carries none, and
  error answers to a send have no documented body), so there is no table.
- ``txtly``: the ``name`` of an API error answer, when a send is refused ("Errors",
  https://docs.txtly.com.au/errors). Txtly publishes no delivery error codes.
"""

from __future__ import annotations

import re

PROVIDER_LABELS: dict[str, str] = {
    "standard": "code",
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
"""How a code is introduced in words, e.g. "(Twilio 30007)"."""

TWILIO: dict[str, str] = {
    "21211": "the 'To' number is not a valid phone number",
    "21408": "sending to the recipient's country is not enabled on the account",
    "21610": "the recipient replied STOP; Twilio sends nothing until they reply START",
    "21614": "the 'To' number is not a mobile number (a landline, or invalid)",
    "30001": "queue overflow: too many messages were queued for the sender",
    "30002": "the account was suspended before Twilio could send the message",
    "30003": "the handset is unreachable (switched off, no signal, or cannot take SMS)",
    "30004": "message blocked: the recipient or their carrier blocks messages from this sender",
    "30005": "unknown handset: the number does not exist or is no longer in service",
    "30006": "a landline, or a carrier this sender cannot reach",
    "30007": "carrier filtered the message as spam or against its content rules",
    "30008": "the carrier gave no reason (unknown error)",
    "30009": "a segment of a multipart message went missing",
    "30010": "the message price exceeds the max price set for it",
    "30032": "the toll-free sending number has not been verified",
    "30034": "the US sending number is not registered to an approved A2P 10DLC campaign",
}

VONAGE: dict[str, str] = {
    # SMS API delivery receipt err-code.
    "1": "not delivered and no cause could be determined",
    "2": "the handset is temporarily unavailable (absent subscriber)",
    "3": "the number is no longer active (absent subscriber, permanent)",
    "4": "the recipient has barred messages (call barred by user)",
    "5": "a number portability problem at the network",
    "6": "blocked by the carrier's anti-spam filter",
    "7": "the handset was busy",
    "8": "a network error",
    "9": "the recipient asked not to get messages from this service",
    "10": "the message was invalid, e.g. a wrong encoding flag",
    "11": "Vonage found no route to deliver it",
    "12": "the destination cannot be reached; check the number",
    "13": "the recipient cannot receive it because of their age",
    "14": "the recipient's carrier blocks SMS to the number",
    "15": "the prepaid recipient has insufficient funds",
    "99": "a general error",
    # Messages API errors.
    "1000": "throttled: over the account's submission capacity",
    "1010": "the request missed mandatory parameters",
    "1020": "a parameter value was invalid",
    "1021": "the tag value was invalid",
    "1022": "the template or its parameters were invalid",
    "1030": "an internal error at Vonage",
    "1040": "Vonage could not process it, e.g. an unrecognised number prefix",
    "1050": "the number is barred from receiving messages",
    "1060": "the account is barred from sending",
    "1070": "the prepaid account has insufficient credit",
    "1080": "the account is not provisioned for the REST API",
    "1090": "the message is too long",
    "1100": "a communication failure; the message was not submitted",
    "1120": "local regulations do not accept this sender id",
}

PLIVO: dict[str, str] = {
    "10": "a downstream carrier rejected it as an invalid message",
    "20": "the carrier had network issues (temporary)",
    "30": "blocked by a carrier spam filter",
    "40": "invalid source number (format, not SMS-enabled, or not on the account)",
    "50": "invalid destination number",
    "450": "the destination country is not enabled in the account's Geo Permissions",
    "900": "insufficient credit on the Plivo account",
}

TELNYX: dict[str, str] = {
    "40001": "not routable: a landline or a number that cannot get SMS",
    "40002": "blocked as spam by the carrier (temporary)",
    "40003": "blocked as spam: the sending number is permanently blocked by the carrier",
    "40004": "rejected by the destination carrier for an unknown reason",
    "40005": "expired before it could be delivered",
    "40006": "the recipient's carrier is unavailable",
    "40008": "undeliverable: the carrier did not accept the message",
    "40009": "the carrier rejected the message body",
}

SINCH: dict[str, str] = {
    "0": "delivered",
    "400": "queued at Sinch, to be dispatched at the account's rate",
    "401": "dispatched to the carrier's SMS-C",
    "402": "the SMS-C rejected it as unroutable; a retry would fail the same way",
    "403": "an unexpected error at Sinch",
    "404": "a temporary delivery failure; it can be retried",
    "405": "a parameter in the message body has no value for this recipient",
    "406": "expired before reaching the SMS-C (its expiry time may have been very short)",
    "407": "cancelled by the sender before reaching the SMS-C",
    "408": "the SMS-C rejected it; a retry would fail the same way",
    "410": "no default sender is configured for this recipient",
    "411": "more message parts than the configured maximum",
    "412": "the account is not provisioned for the recipient's region",
    "413": "the Sinch account is blocked (possibly out of credit)",
    "414": "MMS: the media URL was unreachable or answered badly",
    "415": "MMS: rejected by the MMS gateway or the mobile network",
    "416": "MMS: not supported by the recipient's MMS-C",
    "417": "MMS: the destination network or the subscriber cannot be reached",
    "418": "MMS: the handset did not recognise the message content",
}

SENDCOMMS: dict[str, str] = {
    # The client errors a send can be refused with (400).
    "INVALID_PHONE_NUMBER": "the 'to' number is not in E.164 form",
    "MESSAGE_TOO_LONG": "the message is over 1600 characters (10 segments)",
    "MISSING_FIELD": "the send lacked a required field ('to' or 'message')",
    "SMS_SEND_FAILED": "the sender id is not verified for the account, or the recipient opted out",
}

GSM_MAP: dict[str, str] = {
    # 3GPP TS 29.002 MAP error codes, as Infobip's error ids and MessageBird's codes.
    "1": "unknown subscriber: the number is not assigned to an active line",
    "5": "unidentified subscriber",
    "6": "the handset is absent (switched off or no signal)",
    "9": "illegal subscriber: the network refused the handset's authentication",
    "11": "the subscription has no SMS service (teleservice not provisioned)",
    "12": "illegal equipment: the handset is barred by the network",
    "13": "call barred: SMS to this number is barred by the operator or the subscriber",
    "21": "the visited network does not support SMS (facility not supported)",
    "27": "the handset is switched off or out of coverage (absent subscriber)",
    "31": "the handset was busy with another message",
    "32": "the handset could not take the message (e.g. memory full)",
    "33": "the network's list of waiting messages is full",
    "34": "a system failure in the recipient's network",
    "35": "data missing in the recipient's network",
    "36": "unexpected data value in the recipient's network",
}

INFOBIP_NAMES: dict[str, str] = {
    "EC_UNKNOWN_SUBSCRIBER": "1",
    "EC_UNIDENTIFIED_SUBSCRIBER": "5",
    "EC_ABSENT_SUBSCRIBER_SM": "6",
    "EC_ILLEGAL_SUBSCRIBER": "9",
    "EC_TELESERVICE_NOT_PROVISIONED": "11",
    "EC_ILLEGAL_EQUIPMENT": "12",
    "EC_CALL_BARRED": "13",
    "EC_FACILITY_NOT_SUPPORTED": "21",
    "EC_ABSENT_SUBSCRIBER": "27",
    "EC_SUBSCRIBER_BUSY_FOR_MT_SMS": "31",
    "EC_SM_DELIVERY_FAILURE": "32",
    "EC_MESSAGE_WAITING_LIST_FULL": "33",
    "EC_SYSTEM_FAILURE": "34",
    "EC_DATA_MISSING": "35",
    "EC_UNEXPECTED_DATA_VALUE": "36",
}
"""Infobip's names of the MAP codes: a report without ``error.id`` stores the name."""

TXTLY: dict[str, str] = {
    "validation_error": "Txtly refused the request: a field is missing or invalid",
    "authentication_error": "Txtly refused the API key: missing or invalid",
    "authorization_error": "the API key may not do this (its permission level or domain)",
    "not_found": "Txtly does not know the resource the request named",
    "conflict": "the request conflicts with data Txtly already holds",
    "unprocessable_entity": "Txtly could not act on it: well-formed, but the data is invalid",
    "rate_limit_exceeded": "too many requests for the plan's rate limit",
    "internal_error": "an internal error at Txtly",
}

SMPP_COMMAND_STATUS: dict[str, str] = {
    # SMPP 3.4, section 5.1.3, table 5-2.
    "ESME_RINVMSGLEN": "the SMS-C refused it: message length is invalid",
    "ESME_RINVCMDLEN": "the SMS-C refused it: command length is invalid",
    "ESME_RINVCMDID": "the SMS-C refused it: invalid command id",
    "ESME_RINVBNDSTS": "the SMS-C refused it: incorrect bind status for the command",
    "ESME_RALYBND": "the SMS-C refused it: already bound",
    "ESME_RINVPRTFLG": "the SMS-C refused it: invalid priority flag",
    "ESME_RINVREGDLVFLG": "the SMS-C refused it: invalid registered delivery flag",
    "ESME_RSYSERR": "the SMS-C refused it: system error",
    "ESME_RINVSRCADR": "the SMS-C refused it: invalid source address (sender)",
    "ESME_RINVDSTADR": "the SMS-C refused it: invalid destination address",
    "ESME_RINVMSGID": "the SMS-C refused it: message id is invalid",
    "ESME_RBINDFAIL": "the SMS-C refused it: bind failed",
    "ESME_RINVPASWD": "the SMS-C refused it: invalid password",
    "ESME_RINVSYSID": "the SMS-C refused it: invalid system id",
    "ESME_RMSGQFUL": "the SMS-C refused it: message queue full",
    "ESME_RINVSERTYP": "the SMS-C refused it: invalid service type",
    "ESME_RINVNUMDESTS": "the SMS-C refused it: invalid number of destinations",
    "ESME_RINVESMCLASS": "the SMS-C refused it: invalid esm_class",
    "ESME_RSUBMITFAIL": "the SMS-C refused it: submit failed",
    "ESME_RINVSRCTON": "the SMS-C refused it: invalid source address TON",
    "ESME_RINVSRCNPI": "the SMS-C refused it: invalid source address NPI",
    "ESME_RINVDSTTON": "the SMS-C refused it: invalid destination address TON",
    "ESME_RINVDSTNPI": "the SMS-C refused it: invalid destination address NPI",
    "ESME_RTHROTTLED": "the SMS-C refused it: throttled (over the allowed message rate)",
    "ESME_RINVSCHED": "the SMS-C refused it: invalid scheduled delivery time",
    "ESME_RINVEXPIRY": "the SMS-C refused it: invalid validity period",
    "ESME_RX_T_APPN": "the SMS-C refused it: temporary application error",
    "ESME_RX_P_APPN": "the SMS-C refused it: permanent application error",
    "ESME_RX_R_APPN": "the SMS-C refused it: application error, rejected",
    "ESME_RQUERYFAIL": "the SMS-C refused it: query failed",
    "ESME_RUNKNOWNERR": "the SMS-C refused it: unknown error",
}

FUTURESMS: dict[str, str] = {
    "VALIDATION_ERROR": "a field of the send was refused (number, template, sender id or var)",
}

SMSTOOLS: dict[str, str] = {
    # Delivery codes, when no detail code says more.
    "0": "submitted to the operator, which sent no delivery report",
    "1": "delivered",
    "2": "not delivered: out of the network's range, a network problem, or abroad",
    "3": "buffered: the operator has it but could not reach the handset yet",
    "4": "refused by the operator",
    "5": "refused by the operator (the detail code says why)",
    "9": "no delivery report is available for this message",
    # Delivery report detail codes.
    "10": "the receiver's number is invalid or unknown",
    "11": "the receiver is temporarily out of the network's range",
    # Errors of a refused send.
    "102": "no message text was given",
    "103": "the phone number is missing or invalid",
    "106": "the destination number is missing or invalid",
    "109": "the sender name is empty",
    "110": "a sender number must start with +",
    "111": "invalid sender: at most 11 characters, or 14 digits",
    "112": "the message text is required",
    "114": "the request was empty",
    "118": "the message is too long for Smstools",
    "121": "the scheduled date is invalid or in the past",
    "131": "the number is on the account's opt-out list: the person asked for no messages",
    "137": "the 24-hour window is closed: send a template message instead",
    "138": "Smstools cannot send it because of a misconfiguration; contact their support",
    "139": "parameters are missing or invalid",
    "140": "the WhatsApp Business account is invalid or missing",
}

SMSC_SPECIFIC = "an error code of the SMS-C or the network; its meaning depends on the operator"
"""What a numeric SMPP receipt ``err`` is: operator-specific, so no table can say more."""

_TABLES: dict[str, dict[str, str]] = {
    "twilio": TWILIO,
    "vonage": VONAGE,
    "plivo": PLIVO,
    "telnyx": TELNYX,
    "sinch": SINCH,
    "infobip": GSM_MAP,
    "bird": GSM_MAP,
    "futuresms": FUTURESMS,
    "smstools": SMSTOOLS,
    "txtly": TXTLY,
    "sendcomms": SENDCOMMS,
}
_SMPP_ERR = re.compile(r"[0-9A-Fa-f]{1,8}")


def _numeric(code: str) -> str:
    """``"030007"`` -> ``"30007"``; ``"0"`` stays ``"0"``; other text unchanged."""
    if code.isdigit():
        return code.lstrip("0") or "0"
    return code


def explain(provider_type: str, code: str | None) -> str | None:
    """One plain sentence for ``code`` as reported by a provider of ``provider_type``,
    or None when the code has no documented meaning we know of."""
    if code is None or not code.strip():
        return None
    code = code.strip()
    if provider_type == "jasmin":
        named = SMPP_COMMAND_STATUS.get(code.upper())
        if named is not None:
            return named
        return SMSC_SPECIFIC if _SMPP_ERR.fullmatch(code) else None
    table = _TABLES.get(provider_type)
    if table is None:
        return None
    if provider_type == "infobip":
        code = INFOBIP_NAMES.get(code.upper(), code)
    return table.get(_numeric(code))


def label(provider_type: str) -> str:
    """The words that introduce a code of this provider type, e.g. ``Twilio``."""
    return PROVIDER_LABELS.get(provider_type, "code")
