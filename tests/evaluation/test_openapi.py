"""Every route of the evaluation service's own routers declares its response model, visible in /openapi.json,
with Chinese field descriptions (issue 12)."""

from __future__ import annotations

import re
from typing import Any

from services.evaluation.main import build_app, routers

_CJK = re.compile(r"[\u4e00-\u9fff]")


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return resolved


def test_every_route_has_a_response_model_with_chinese_descriptions() -> None:
    spec = build_app().openapi()
    own = {(route.path, method.lower()) for router in routers() for route in router.routes
           for method in getattr(route, "methods", ())}
    routes = [
        (path, method, op)
        for path, ops in spec["paths"].items()
        for method, op in ops.items() if (path, method) in own
    ]
    assert len(routes) == len(own) >= 19
    missing, undescribed = [], []
    for path, method, op in routes:
        ok = next((r for code, r in op["responses"].items() if code.startswith("2")), None)
        schema = (ok or {}).get("content", {}).get("application/json", {}).get("schema", {})
        model = _resolve(spec, schema)
        if "$ref" not in schema or model.get("type") != "object" or not model.get("properties"):
            missing.append(f"{method.upper()} {path}")
            continue
        for name, prop in model["properties"].items():
            if not _CJK.search(prop.get("description", "")):
                undescribed.append(f"{method.upper()} {path}: {name}")
    assert missing == [], f"routes without a response model: {missing}"
    assert undescribed == [], f"response fields without a Chinese description: {undescribed}"
