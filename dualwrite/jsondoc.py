"""The JSON edge: what a record's `to_json` gives, a `--json` document or a Lambda's JSON holds.

A name of its own so that a JSON document is told apart from a record crossing a module
(a frozen dataclass) and from an AWS request or response shape (left as botocore's dicts).
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]
