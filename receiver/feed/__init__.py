"""The status change feed: changes of a message's status or error, delivered in order to
subscribers (``[subscribers.NAME]``) and readable with ``GET /v1/changes``.

The store writes each change in the merge's transaction (``receiver.store.changes``);
``payload`` renders and signs it; ``worker`` delivers it.
"""
