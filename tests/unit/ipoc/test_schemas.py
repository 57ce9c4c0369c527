"""The seed's schemas as data files, validated with draft 2020-12."""

from __future__ import annotations

import copy

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from ipoc import schemas
from ipoc.errors import ValidationError
from tests.support import seed


@pytest.mark.parametrize("kind", schemas.KINDS)
def test_each_schema_is_valid_draft_2020_12(kind):
    """Each schema is checked against the draft 2020-12 meta-schema (jsonschema's own), not just its ``$schema``
    string."""
    document = schemas.schema(kind)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(document)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.__setitem__("type", "objekt"),
        lambda d: d.__setitem__("required", "not-a-list"),
        lambda d: d.__setitem__("additionalProperties", 7),
    ],
    ids=["unknown-type", "required-not-array", "additionalProperties-not-schema"],
)
@pytest.mark.parametrize("kind", schemas.KINDS)
def test_the_meta_schema_check_refuses_a_broken_schema(kind, breakage):
    """The oracle above can fail: the same check refuses each schema once broken."""
    document = copy.deepcopy(schemas.schema(kind))
    breakage(document)
    with pytest.raises(SchemaError):
        Draft202012Validator.check_schema(document)


def test_seed_examples_validate():
    schemas.validate("function", seed.load("function_vod.json"))
    schemas.validate("user", seed.load("user_vod.json"))
    schemas.validate("vaas", seed.load("vaas_vod.json"))


def test_errors_name_the_json_path():
    user = seed.load("user_vod.json")
    user["identities"][1]["file_rights"][2]["rights"] = "24582"
    with pytest.raises(ValidationError) as caught:
        schemas.validate("user", user)
    assert caught.value.path == "$.identities[1].file_rights[2].rights"
    assert "user policy is invalid at $.identities[1].file_rights[2].rights: '24582' is not of type 'integer'" in str(
        caught.value
    )


def test_additional_properties_are_refused_as_the_seed_says():
    function = seed.load("function_vod.json") | {"extra": 1}
    with pytest.raises(ValidationError, match="Additional properties are not allowed"):
        schemas.validate("function", function)
    with pytest.raises(ValidationError, match=r"at \$: 'bucket' is a required property|at \$\.s3: 'bucket'"):
        schemas.validate("s3_app_input", {"s3": {"filename": "f"}})


def test_vaas_programs_carry_no_pi_hash():
    vaas = seed.load("vaas_vod.json")
    vaas["programs"][0]["pi_hash"] = "00"
    with pytest.raises(ValidationError, match=r"\$\.programs\[0\]"):
        schemas.validate("vaas", vaas)
