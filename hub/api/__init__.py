"""HTTP API routes, one module per resource; ``hub.server.create_app`` mounts them.

Routes are thin: they parse the request, call a service and return JSON; domain
errors become statuses in one place (``errors.py``).
"""
