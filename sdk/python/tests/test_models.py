"""The SDK's models stay in step with the server's OpenAPI document: same fields, same required ones."""

from __future__ import annotations

import dataclasses
import unittest

from fluid.models import MODELS, Model, wire_name

from ._env import openapi


def check(model: type, schemas: dict) -> list:
    problems = []
    schema = schemas.get(model.__schema__)
    if schema is None:
        return [f"{model.__name__}: no schema {model.__schema__!r} in the document"]
    props = set(schema.get("properties", {}))
    required = set(schema.get("required", []))
    fields = {wire_name(f): f for f in dataclasses.fields(model)}
    defaulted = set(getattr(model, "__defaulted_required__", ()))
    for name in sorted(props - set(fields)):
        problems.append(f"{model.__name__}: the document has {name!r}, the model does not")
    for name in sorted(set(fields) - props):
        problems.append(f"{model.__name__}: the model has {name!r}, the document does not")
    for name, f in fields.items():
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if name in required and has_default and f.name not in defaulted:
            problems.append(f"{model.__name__}.{f.name}: required in the document, defaulted here")
        if name in props and name not in required and not has_default:
            problems.append(f"{model.__name__}.{f.name}: optional in the document, required here")
    return problems


class ModelsMatchOpenApi(unittest.TestCase):
    def test_every_model_matches_its_schema(self) -> None:
        schemas = openapi()["components"]["schemas"]
        problems = [p for m in MODELS for p in check(m, schemas)]
        self.assertEqual(problems, [], "run the SDK's models past the document: " + "; ".join(problems))
        self.assertGreaterEqual(len(MODELS), 10)

    def test_the_check_can_fail(self) -> None:
        @dataclasses.dataclass
        class Stale(Model):
            __schema__ = "Snapshot"
            id: str
            sandbox_id: str
            label: str  # renamed on the server long ago

        problems = check(Stale, openapi()["components"]["schemas"])
        self.assertIn("Stale: the model has 'label', the document does not", problems)
        self.assertTrue(any("the document has 'name'" in p for p in problems))


if __name__ == "__main__":
    unittest.main()
