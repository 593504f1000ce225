"""What the JSON API (``receiver.http``) and the support console (``receiver.console``)
both use, so that neither imports the other: the app state (``state``) and what it holds
(``metrics``, send ``admission``), the API's JSON models (``schemas``), a message as a
role may see it and its CSV export (``messages``), and reprocessing a stored event
(``reprocess``). Nothing here imports either of them."""
