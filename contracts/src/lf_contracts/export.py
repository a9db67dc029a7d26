"""Exports each integration event's JSON Schema to contracts/schemas/<routing key>.json.

Services in other languages (or other repositories) validate against these files, so a test fails
when they no longer match the models: run ``python -m lf_contracts.export`` after changing one.
"""

from __future__ import annotations

import json
from pathlib import Path

from lf_contracts.events import REGISTRY

SCHEMAS = Path(__file__).parent / "schemas"


def rendered() -> dict[str, str]:
    """File name -> content, for every registered event."""
    files = {}
    for key, model in sorted(REGISTRY.items()):
        schema = model.model_json_schema(by_alias=True, mode="serialization")
        schema["$id"] = f"https://lenserfight.dev/contracts/{key}.json"
        schema["x-routing-key"] = key
        files[f"{key}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def main() -> None:
    SCHEMAS.mkdir(exist_ok=True)
    for stale in SCHEMAS.glob("*.json"):
        stale.unlink()
    for name, content in rendered().items():
        (SCHEMAS / name).write_text(content)
        print(f"wrote contracts/schemas/{name}")


if __name__ == "__main__":
    main()
