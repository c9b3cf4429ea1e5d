"""`dualwrite plan` on a migration whose custom mapping cannot be loaded or built exits 2
(bad configuration, DESIGN.md section 4) with the route and the reason, not 1 "unexpected"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from dualwrite.aws.clients import Clients
from dualwrite.cli.app import main


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("tests.unit.sample_mapping_typo:OrdersMapping", "NameError"),
        ("tests.unit.sample_mapping:Unfinished", "does not define owns"),
    ],
)
def test_plan_with_an_unloadable_custom_mapping_exits_2(
    moto_clients: Clients, tmp_path: Path, capsys: pytest.CaptureFixture[str], spec: str, says: str
) -> None:
    moto_clients.dynamodb.create_table(
        TableName="OrdersTable",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    config = tmp_path / "m.yaml"
    route = {"name": "orders", "source": "OrdersTable", "target": "CoreTable", "mapping": spec}
    config.write_text(
        yaml.safe_dump(
            {"routes": [route], "targets": {"CoreTable": {"key": {"PK": "S", "SK": "S"}}}}
        )
    )
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["--config", str(config), "plan", "--json"])
    out, err = capsys.readouterr()
    assert exc.value.code == 2, err
    result = json.loads(out)
    assert result["exit_code"] == 2
    assert "unexpected" not in err
    assert says in json.dumps(result) and spec in json.dumps(result)
