"""Build correctly signed webhook requests, for integration tests and tooling.

One module per provider type; every ``*_request`` builder returns a
``SignedRequest`` (``path`` with any query string, ``body``, ``headers``, ``method``):

    request = standard_request(secret, standard_report("prov-1", "delivered"))
    httpx.request(request.method, base_url + request.path,
                  content=request.body, headers=request.headers)

``FakeProvider`` (``receiver.testing.fake_provider``) is a real HTTP server that speaks
the ``standard`` send API, for testing sends end to end.
"""

from receiver.testing.base import SignedRequest
from receiver.testing.bird import bird_report, bird_request
from receiver.testing.fake_provider import FakeProvider
from receiver.testing.fake_sendcomms import FakeSendComms
from receiver.testing.infobip import infobip_request, infobip_result, infobip_time
from receiver.testing.jasmin import jasmin_dlr, jasmin_request, smpp_date
from receiver.testing.plivo import plivo_report, plivo_request
from receiver.testing.sendcomms import sendcomms_event, sendcomms_request
from receiver.testing.sinch import (
    sinch_batch_report,
    sinch_recipient_report,
    sinch_request,
    sinch_status,
)
from receiver.testing.standard import standard_report, standard_request
from receiver.testing.telnyx import telnyx_event, telnyx_public_key, telnyx_request
from receiver.testing.twilio import twilio_report, twilio_request
from receiver.testing.vonage import (
    vonage_message_status,
    vonage_messages_request,
    vonage_request,
    vonage_sms_report,
    vonage_sms_request,
)

__all__ = [
    "FakeProvider",
    "FakeSendComms",
    "SignedRequest",
    "bird_report",
    "bird_request",
    "infobip_request",
    "infobip_result",
    "infobip_time",
    "jasmin_dlr",
    "jasmin_request",
    "plivo_report",
    "plivo_request",
    "sendcomms_event",
    "sendcomms_request",
    "sinch_batch_report",
    "sinch_recipient_report",
    "sinch_request",
    "sinch_status",
    "smpp_date",
    "standard_report",
    "standard_request",
    "telnyx_event",
    "telnyx_public_key",
    "telnyx_request",
    "twilio_report",
    "twilio_request",
    "vonage_message_status",
    "vonage_messages_request",
    "vonage_request",
    "vonage_sms_report",
    "vonage_sms_request",
]
