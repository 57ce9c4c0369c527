"""The registry's rules (versions, aliases, uploads, deletions) on the in-memory stores of tests/fakes.

Fast (no moto): the fakes keep the real stores' contract
(tests/functional/lambdas/test_store_contract.py), and the HTTP routes over
the same logic have their own tests on moto (tests/functional/lambdas/test_ccfaas_*.py).
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from ipoc.errors import Conflict, HashMismatch, NotFound, PayloadTooLarge, ValidationError
from ipoc.path_segments import encode_path
from lambdas.ccfaas.registry import LOADED, Registry
from lambdas.shared.config import Settings
from lambdas.shared.stores import ArtifactStore, InstanceStatus
from tests.fakes import FakeArtifactStore, FakeFunctionStore, FakeInstanceStore
from tests.support import policies
from tests.support.settings import use_settings

WASM = b"\0asm\1\0\0\0 echo"
OTHER_WASM = b"\0asm\1\0\0\0 other"
SEGMENT = encode_path(policies.ECHO)


@pytest.fixture
def registry(monkeypatch) -> Registry:
    use_settings(monkeypatch, Settings())
    return Registry(FakeFunctionStore(), FakeArtifactStore(), FakeInstanceStore())


def fake_artifacts(registry: Registry) -> FakeArtifactStore:
    """The registry's artifact store, as the fake it was given here (to read what it holds)."""
    assert isinstance(registry.artifacts, FakeArtifactStore)
    return registry.artifacts


def published(registry: Registry, wasm: bytes = WASM, name: str = "echo", **changes: Any) -> int:
    record, created = registry.publish({**policies.echo_function(name, wasm), **changes})
    assert created
    return record.version


def loaded(registry: Registry, wasm: bytes = WASM, reference: str = "echo") -> dict[str, Any]:
    return registry.upload(reference, "program", SEGMENT, wasm)


def test_publishing_the_same_content_again_makes_no_new_version(registry: Registry) -> None:
    assert published(registry) == 1
    record, created = registry.publish(policies.echo_function("echo", WASM))
    assert (record.version, created) == (1, False)
    assert published(registry, OTHER_WASM) == 2
    assert [v.version for v in registry.versions("echo")] == [1, 2] and registry.names() == ["echo"]


def test_a_new_version_reuses_files_an_earlier_version_loaded(registry: Registry) -> None:
    published(registry)
    loaded(registry)
    assert published(registry, debug=True) == 2  # other policy, same program bytes
    entry = registry.get("echo").files[policies.ECHO]
    assert entry["status"] == LOADED and entry["key"] == ArtifactStore.artifact_key(
        "echo", hashlib.sha256(WASM).hexdigest()
    )


def test_a_direct_upload_keeps_only_the_declared_bytes_and_only_once(registry: Registry) -> None:
    published(registry)
    with pytest.raises(HashMismatch):
        loaded(registry, OTHER_WASM)
    assert fake_artifacts(registry).objects == {}
    assert loaded(registry)["status"] == LOADED
    assert registry.artifacts.open(registry.get("echo").files[policies.ECHO]["key"]).read() == WASM
    with pytest.raises(Conflict, match="already loaded"):
        loaded(registry)


def test_a_body_over_the_direct_upload_limit_is_sent_to_presigned_uploads(registry: Registry, monkeypatch) -> None:
    published(registry)
    use_settings(monkeypatch, IPOC_DIRECT_UPLOAD_LIMIT=str(len(WASM) - 1))
    with pytest.raises(PayloadTooLarge, match="/upload"):
        loaded(registry)


def test_a_presigned_upload_is_verified_before_it_is_kept(registry: Registry) -> None:
    published(registry)
    artifacts = fake_artifacts(registry)
    started = registry.start_upload("echo", "program", SEGMENT)
    assert started["method"] == "PUT" and started["complete"].endswith("/upload/complete")
    with pytest.raises(NotFound, match="nothing was uploaded"):
        registry.complete_upload("echo", "program", SEGMENT)
    upload = registry.get("echo").files[policies.ECHO]["upload"]
    artifacts.upload_part(upload["key"], upload["upload_id"], OTHER_WASM)
    with pytest.raises(HashMismatch):
        registry.complete_upload("echo", "program", SEGMENT)
    assert artifacts.objects == {} and registry.get("echo").files[policies.ECHO]["status"] != LOADED
    registry.start_upload("echo", "program", SEGMENT)
    upload = registry.get("echo").files[policies.ECHO]["upload"]
    artifacts.upload_part(upload["key"], upload["upload_id"], WASM)
    assert registry.complete_upload("echo", "program", SEGMENT)["status"] == LOADED
    assert list(artifacts.objects) == [ArtifactStore.artifact_key("echo", hashlib.sha256(WASM).hexdigest())]


def test_a_new_presigned_upload_closes_the_abandoned_one(registry: Registry) -> None:
    published(registry)
    artifacts = fake_artifacts(registry)
    registry.start_upload("echo", "program", SEGMENT)
    first = registry.get("echo").files[policies.ECHO]["upload"]
    registry.start_upload("echo", "program", SEGMENT)
    with pytest.raises(Exception, match="NoSuchUpload"):
        artifacts.upload_part(first["key"], first["upload_id"], WASM)  # its URL no longer works


def test_aliases_name_versions_and_latest_follows_the_newest(registry: Registry) -> None:
    published(registry)
    published(registry, OTHER_WASM)
    assert registry.set_alias("echo", "prod", 1) == {"latest": 2, "prod": 1}
    assert registry.get("echo:prod").version == 1 and registry.get("echo:2").version == 2
    assert registry.get("echo").version == 2
    with pytest.raises(ValidationError):
        registry.set_alias("echo", "latest", 1)
    with pytest.raises(NotFound, match="no version 7"):
        registry.set_alias("echo", "prod", 7)
    with pytest.raises(NotFound, match="no alias 'beta'"):
        registry.get("echo:beta")
    with pytest.raises(NotFound, match="not registered"):
        registry.get("nothing:prod")
    assert registry.delete_alias("echo", "prod") == {"latest": 2}


def test_a_version_in_use_or_aliased_is_not_deleted_and_stays_usable(registry: Registry) -> None:
    published(registry)
    published(registry, OTHER_WASM)
    registry.instances.create({"instance_id": "i-1", "function": "echo", "version": 1, "status": "READY"})
    registry.set_alias("echo", "prod", 1)
    with pytest.raises(Conflict) as refused:
        registry.delete_version("echo", 1)
    assert "instances use it (i-1)" in str(refused.value) and "aliases point at it (prod)" in str(refused.value)
    assert registry.version("echo", 1).deleting is False  # the mark was taken back
    registry.instances.transition("i-1", InstanceStatus.DELETED)
    registry.delete_alias("echo", "prod")
    registry.delete_version("echo", 1)
    assert [v.version for v in registry.versions("echo")] == [2]


def test_deleting_a_function_drops_its_bytes_and_its_name(registry: Registry) -> None:
    published(registry)
    loaded(registry)
    published(registry, debug=True)  # shares the loaded bytes
    registry.delete("echo")
    assert registry.names() == [] and fake_artifacts(registry).objects == {}
    with pytest.raises(NotFound):
        registry.get("echo")


def test_unloading_a_file_keeps_bytes_another_version_still_uses(registry: Registry) -> None:
    published(registry)
    loaded(registry)
    published(registry, debug=True)
    registry.delete_file("echo:1", "program", SEGMENT)
    assert registry.get("echo:1").files[policies.ECHO]["status"] != LOADED
    key = registry.get("echo:2").files[policies.ECHO]["key"]
    assert registry.artifacts.exists(key)
    registry.delete_file("echo:2", "program", SEGMENT)
    assert not registry.artifacts.exists(key)
