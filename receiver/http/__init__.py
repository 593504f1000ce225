"""The JSON API: webhook intake, the ``/v1`` routes, pure-ASGI middleware, problem+json
and the connection edge. ``receiver.app`` mounts its routes beside the console's."""
