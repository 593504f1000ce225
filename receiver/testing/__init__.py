"""Build correctly signed webhook requests, for integration tests and tooling.

One module per provider type; every ``*_request`` builder returns a
``SignedRequest`` (``path`` with any query string, ``body``, ``headers``, ``method``):

    request = standard_request(secret, standard_report("prov-1", "delivered"))
    httpx.request(request.method, base_url + request.path,
                  content=request.body, headers=request.headers)

``FakeProvider`` (``receiver.testing.fake_provider``) is a real HTTP server that speaks
the ``standard`` send API, for testing sends end to end. Each other type that sends has
its fake API too, faults included: ``FakeFutureSms`` (``receiver.testing.fake_futuresms``),
``FakeRelayOS`` (``receiver.testing.fake_relayos``), ``FakeSendComms``
(``receiver.testing.fake_sendcomms``), ``FakeSmstools`` (``receiver.testing.fake_smstools``),
``FakeTxtly`` (``receiver.testing.fake_txtly``).

``TestSubscriber`` (``receiver.testing.subscriber``) is a change-feed subscriber on
loopback that verifies our signature and records what arrived (docs/testing.md).
"""

from receiver.testing.base import SignedRequest
from receiver.testing.bird import bird_report, bird_request
from receiver.testing.fake_futuresms import FakeFutureSms
from receiver.testing.fake_provider import FakeProvider
from receiver.testing.fake_relayos import FakeRelayOS
from receiver.testing.fake_sendcomms import FakeSendComms
from receiver.testing.fake_smstools import FakeSmstools
from receiver.testing.fake_txtly import FakeTxtly
from receiver.testing.futuresms import futuresms_report, futuresms_request, futuresms_time
from receiver.testing.infobip import infobip_request, infobip_result, infobip_time
from receiver.testing.jasmin import jasmin_dlr, jasmin_request, smpp_date
from receiver.testing.plivo import plivo_report, plivo_request
from receiver.testing.relayos import relayos_report, relayos_request
from receiver.testing.sendcomms import sendcomms_event, sendcomms_request
from receiver.testing.sinch import (
    sinch_batch_report,
    sinch_recipient_report,
    sinch_request,
    sinch_status,
)
from receiver.testing.smstools import smstools_report, smstools_request, smstools_time
from receiver.testing.standard import standard_report, standard_request
from receiver.testing.subscriber import ReceivedChange, TestSubscriber
from receiver.testing.telnyx import telnyx_event, telnyx_public_key, telnyx_request
from receiver.testing.twilio import twilio_report, twilio_request
from receiver.testing.txtly import txtly_event, txtly_request
from receiver.testing.vonage import (
    vonage_message_status,
    vonage_messages_request,
    vonage_request,
    vonage_sms_report,
    vonage_sms_request,
)

__all__ = [
    "FakeFutureSms",
    "FakeProvider",
    "FakeRelayOS",
    "FakeSendComms",
    "FakeSmstools",
    "FakeTxtly",
    "ReceivedChange",
    "SignedRequest",
    "TestSubscriber",
    "bird_report",
    "bird_request",
    "futuresms_report",
    "futuresms_request",
    "futuresms_time",
    "infobip_request",
    "infobip_result",
    "infobip_time",
    "jasmin_dlr",
    "jasmin_request",
    "plivo_report",
    "plivo_request",
    "relayos_report",
    "relayos_request",
    "sendcomms_event",
    "sendcomms_request",
    "sinch_batch_report",
    "sinch_recipient_report",
    "sinch_request",
    "sinch_status",
    "smpp_date",
    "smstools_report",
    "smstools_request",
    "smstools_time",
    "standard_report",
    "standard_request",
    "telnyx_event",
    "telnyx_public_key",
    "telnyx_request",
    "twilio_report",
    "twilio_request",
    "txtly_event",
    "txtly_request",
    "vonage_message_status",
    "vonage_messages_request",
    "vonage_request",
    "vonage_sms_report",
    "vonage_sms_request",
]
