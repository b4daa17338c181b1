"""What the tests run against: a Fluid server started by the node test suite (FLUID_URL, FLUID_TOKEN),
or, for the offline tests, its OpenAPI document (FLUID_OPENAPI)."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any, Dict


def require(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(
            f"{name} is not set. These tests run against a real Fluid server: "
            "node --test test/integration/http-sdk.test.ts starts one on the lab and runs them."
        )
    return value


def openapi() -> Dict[str, Any]:
    path = os.environ.get("FLUID_OPENAPI")
    if path:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    with urllib.request.urlopen(require("FLUID_URL") + "/v1/openapi.json") as r:
        return json.load(r)
