"""Build correctly signed webhook requests, for integration tests and tooling.

One module per provider type; every builder returns a ``SignedRequest``:

    request = standard_request(secret, standard_report("prov-1", "delivered"))
    httpx.post(base_url + request.path, content=request.body, headers=request.headers)
"""

from receiver.testing.base import SignedRequest
from receiver.testing.standard import standard_report, standard_request

__all__ = ["SignedRequest", "standard_report", "standard_request"]
