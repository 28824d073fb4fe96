"""The editors' desk: a signed-in web app where editors fix an issue's words, preview it,
test-send and schedule it without a terminal (``digest desk``).

``passwords`` hashes and checks passwords (argon2id); ``sessions`` signs people in and
out and guards every form against cross-site requests; ``guard`` throttles sign-in
attempts; ``editing`` changes an issue file in place, keeping its comments and order;
``app`` puts the routes together, one module per area (``auth_routes``,
``issue_routes``, ``action_routes``, ``audit_routes``).
"""
