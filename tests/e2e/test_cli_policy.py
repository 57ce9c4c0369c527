"""`ipoc policy validate|hash|explain` on real files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support import processes
from tests.support.seed import SEED


def test_hash_equals_sha256sum():
    path = SEED / "vaas_vod.json"
    ours = processes.run(["policy", "hash", str(path)])
    theirs = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True)
    assert ours.returncode == 0
    assert ours.stdout.strip() == theirs.stdout.split()[0]
    instance = processes.run(["policy", "hash", "--instance", str(path)])
    assert instance.stdout.strip() == theirs.stdout.split()[0][:59]


def test_validate_names_the_offending_path(tmp_path: Path):
    ok = processes.run(["policy", "validate", str(SEED / "function_vod.json"), "--kind", "function"])
    assert ok.returncode == 0, ok.stderr
    assert "valid function policy" in ok.stderr
    broken = json.loads((SEED / "user_vod.json").read_text())
    broken["identities"][0]["file_rights"][0]["rights"] = "lots"
    path = tmp_path / "user.json"
    path.write_text(json.dumps(broken))
    result = processes.run(["policy", "validate", str(path), "--kind", "user"])
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "error: user policy is invalid at $.identities[0].file_rights[0].rights: 'lots' is not of type 'integer'"
    )
    # several problems: each on its line, in document order (it used to say "and N more" and show none)
    broken["identities"][1]["certificate"] = 7
    del broken["instanceid"]
    path.write_text(json.dumps(broken))
    several = processes.run(["policy", "validate", str(path), "--kind", "user"])
    assert several.returncode == 1
    assert several.stderr.strip().splitlines() == [
        "error: user policy is invalid at $: 'instanceid' is a required property",
        "error: user policy is invalid at $.identities[0].file_rights[0].rights: 'lots' is not of type 'integer'",
        "error: user policy is invalid at $.identities[1].certificate: 7 is not of type 'string'",
    ]


def test_explain_shows_rights_as_names():
    result = processes.run(["policy", "explain", "--json", str(SEED / "vaas_vod.json")])
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    user_program = next(r for r in rows if r["path"] == "/program/" and r["value"] == "536879104")
    assert user_program["rights"] == "OPEN_EXECUTE" and user_program["allows"] == "execute"
    s3 = rows[0]
    assert (s3["path"], s3["rights"], s3["allows"]) == ("/s3_app_input/", "WRITE", "write, append")
    table = processes.run(["policy", "explain", str(SEED / "function_vod.json")], env={"COLUMNS": "200"})
    assert "program-load identity (CCFaaS)" in table.stdout and "READ_WRITE" in table.stdout
