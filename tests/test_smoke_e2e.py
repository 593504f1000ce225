from __future__ import annotations

from receiver.testing import standard_report, standard_request


def test_a_signed_report_is_committed_and_visible_to_staff(server):
    request = standard_request(server.secret(), standard_report("prov-1", "delivered"))
    answer = server.post(request)
    assert answer.status_code == 200
    assert answer.json() == {"received": 1, "applied": 1, "duplicates": 0, "superseded": 0}
    with server.api(server.staff_token("alice")) as api:
        items = api.get("/v1/messages", params={"provider_message_id": "prov-1"}).json()["items"]
    assert [(m["provider_message_id"], m["status"], m["final"]) for m in items] == [
        ("prov-1", "delivered", True)
    ]
