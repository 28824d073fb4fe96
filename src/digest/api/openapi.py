"""The OpenAPI 3.1 document of the HTTP API, made from the same table as its routes."""

from __future__ import annotations

import re
from typing import Any

from digest.api.endpoints import ENDPOINTS

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
        }
    },
}
FAILURES = {
    "400": "The request is not what the endpoint takes",
    "401": "No live API token",
    "403": "A token of the other scope",
    "429": "Too many calls: wait for Retry-After seconds",
}


def document(version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    failures = {code: {"description": text, "content": error} for code, text in FAILURES.items()}
    for endpoint in ENDPOINTS:
        path = "/api/v1" + endpoint.path
        names = re.findall(r"{(\w+)}", endpoint.path)
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "operationId": f"{endpoint.handler.__name__}",
            "security": [{"bearer": []}],
            "x-scope": endpoint.scope,
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in names
            ],
            "responses": {str(endpoint.success): {"description": "Done"}} | failures,
        }
        if endpoint.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": endpoint.body.model_json_schema()}},
            }
        paths.setdefault(path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "digest", "version": version},
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
