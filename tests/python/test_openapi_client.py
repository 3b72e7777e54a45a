"""The admin API as integrators meet it (issue #19): a client generated from the served OpenAPI
document by a common generator (openapi-python-client, from PyPI) is complete — no schema or
operation dropped, not a single warning — and drives the admin API: the programme's challenges
(a recursive union of goals) put and read back, a refusal read as the typed problem."""

import importlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path

from conftest import ROOT, serve

VENV_BIN = Path(sys.executable).parent


def generate(server_url, tmp_path):
    spec = tmp_path / "openapi.json"
    with urllib.request.urlopen(f"{server_url}/openapi.json", timeout=10) as resp:
        spec.write_bytes(resp.read())
    # The one setting an integrator adds: the pass files are binary (a vendor media type).
    config = tmp_path / "config.yaml"
    config.write_text("post_hooks: []\ncontent_type_overrides:\n"
                      "  application/vnd.apple.pkpass: application/octet-stream\n")
    out = subprocess.run(
        [str(VENV_BIN / "openapi-python-client"), "generate", "--path", str(spec),
         "--output-path", str(tmp_path / "client"), "--config", str(config), "--overwrite"],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    said = out.stdout + out.stderr
    assert "Warning" not in said and "Unable" not in said and "removal" not in said, said
    sys.path.insert(0, str(tmp_path / "client"))
    return json.loads(spec.read_text())


def test_a_generated_client_is_complete_and_drives_the_admin_api(tmp_path):
    # Its own server: the programme's rules it puts would change other tests' points.
    with serve() as server_url:
        drive(server_url, tmp_path)


def drive(server_url, tmp_path):
    doc = generate(server_url, tmp_path)
    client_mod = importlib.import_module("tessera_client")
    from tessera_client.api.admin import get_challenges, put_challenges
    from tessera_client.models import GoalAllOf, Problem, RuleSet

    # Every documented operation became a function.
    generated = {p.stem for p in (tmp_path / "client" / "tessera_client" / "api").rglob("*.py")}
    operations = {op["operationId"] for path in doc["paths"].values() for op in path.values()
                  if isinstance(op, dict) and "operationId" in op}
    assert operations <= generated, operations - generated

    admin = client_mod.AuthenticatedClient(base_url=server_url, token="tessera-admin")
    example = json.loads((ROOT / "docs" / "rules.example.json").read_text())
    rules = RuleSet.from_dict(example)
    nested = [c for c in rules.challenges if isinstance(c.goal, GoalAllOf)]
    assert nested, "the example's all_of goal is a typed, recursive model"
    put = put_challenges.sync_detailed(client=admin, body=rules)
    assert put.status_code == 204, put.content
    back = get_challenges.sync(client=admin)
    assert isinstance(back, RuleSet)
    # What was put comes back (the server writes its defaults out: empty lists, nulls).
    assert [(c.id, type(c.goal).__name__) for c in back.challenges] == \
        [(c.id, type(c.goal).__name__) for c in rules.challenges]
    [again] = [c for c in back.challenges if isinstance(c.goal, GoalAllOf)]
    assert [type(g).__name__ for g in again.goal.goals] == [type(g).__name__ for g in nested[0].goal.goals]

    # A rule set the server refuses comes back as the typed problem.
    bad = RuleSet.from_dict({**example, "challenges": [{**example["challenges"][0], "id": "not an id!"}]})
    refused = put_challenges.sync_detailed(client=admin, body=bad)
    assert refused.status_code == 422
    assert isinstance(refused.parsed, Problem) and refused.parsed.code == "validation_failed"
