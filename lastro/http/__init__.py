"""Pure-ASGI middleware, one per module, and RFC 9457 problem responses.

Outermost first: request id → access log → in-flight cap → server errors → the application.
Nothing here imports a route, a model or the database layer.
"""
