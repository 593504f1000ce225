"""Error codes as standards define them, and how a code is matched, for the providers'
explanations (``Provider.explain_error``; each type holds its own table).

An explanation is one short sentence in plain words, which the support console shows
next to the code; a code with no documented meaning has none, and the console shows the
provider's own ``error_message`` instead. Codes are matched as the parsers store them
(``error_code`` is text): surrounding blanks and, for numeric codes, leading zeros are
ignored.

The tables here are the standards several types report in:

- ``GSM_MAP``: 3GPP TS 29.002 MAP error codes, which Infobip's handset errors
  (``error.id``, e.g. 1 ``EC_UNKNOWN_SUBSCRIBER``, 27 ``EC_ABSENT_SUBSCRIBER``: "Response
  status and error codes") and MessageBird's ``statusErrorCode`` (Bird, "SMS Platform
  Extended Error Codes": 1 EC_UNKNOWN_SUBSCRIBER ... 34 system failure) use.
- ``SMPP_COMMAND_STATUS``: a refused submit's SMPP command status (``ESME_R*``, SMPP 3.4
  section 5.1.3, table 5-2), as Jasmin reports it. A receipt's numeric ``err`` is, in
  Jasmin's words, "a Network specific error code or an SMSC error code": its meaning
  depends on the operator, and ``SMSC_SPECIFIC`` says exactly that rather than guess.
"""

from __future__ import annotations

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

SMSC_SPECIFIC = "an error code of the SMS-C or the network; its meaning depends on the operator"
"""What a numeric SMPP receipt ``err`` is: operator-specific, so no table can say more."""


def numeric_code(code: str) -> str:
    """``"030007"`` -> ``"30007"``; ``"0"`` stays ``"0"``; other text unchanged."""
    if code.isdigit():
        return code.lstrip("0") or "0"
    return code
