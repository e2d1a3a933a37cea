"""Pure-ASGI middleware, one per module, and RFC 9457 problem responses.

Outermost first: request id → access log → CORS (when configured) → back-pressure (in-flight cap, loop
lag) → body size limit → server errors → the application.
Nothing here imports a route, a model or the database layer.
"""
