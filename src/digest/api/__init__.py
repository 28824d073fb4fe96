"""The HTTP API at ``/api/v1/`` on ``digest serve``, for a site's CMS or a signup widget
elsewhere: subscribers, newsletters, issues and events (api/endpoints.py), described at
``/api/v1/openapi.json``.

Every call carries a token (``digest api-tokens add``) as ``Authorization: Bearer``; a
token has one scope, read or write, and its own rate (``api:`` in config.yaml). Each call
is written to the audit log under the token's name, never the token. Errors are JSON,
``{"error": {"code", "message"}}``. While no token exists the API answers 404 to
everything: a list nobody has opened to programs shows nothing.
"""
