"""The Lambdas' environment, as synthesized into cdk.out, is the settings table of ``lambdas.shared.config``.

The oracle is the cloud assembly CDK writes (what CloudFormation deploys), not
a list of names kept here: every setting the code reads is set, nothing else
is, and the values the deployment fixes parse as the Lambdas will parse them.
"""

from __future__ import annotations

from dataclasses import fields

from infra.constructs.functions import SPECS
from lambdas.shared.config import Settings

POWERTOOLS = {"POWERTOOLS_LOG_LEVEL", "POWERTOOLS_SERVICE_NAME"}  # Powertools' own variables, not settings


def functions_by_handler(template: dict) -> dict[str, dict]:
    return {
        r["Properties"]["Handler"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and "Handler" in r["Properties"]
    }


def test_every_function_with_settings_gets_exactly_the_settings_table(templates) -> None:
    functions = functions_by_handler(templates["Ipoc"])
    assert {spec.handler for spec in SPECS.values()} <= set(functions)  # (and CDK's own provider functions)
    table = set(Settings.names().values())
    assert len(table) == len(fields(Settings))  # one variable per setting, none shared
    for spec in SPECS.values():
        names = set(functions[spec.handler].get("Environment", {}).get("Variables", {}))
        if spec.settings:
            assert names - POWERTOOLS == table, spec.handler
        else:
            assert not names & table, spec.handler  # the setup function needs none of them


def test_the_deployment_values_parse_as_the_lambdas_read_them(templates) -> None:
    """Literal values (tokens are CloudFormation intrinsics: dicts) read back through Settings.from_environment."""
    functions = functions_by_handler(templates["Ipoc"])
    variables = functions[SPECS["Ccfaas"].handler]["Environment"]["Variables"]
    literal = {name: value for name, value in variables.items() if isinstance(value, str)}
    deployed = Settings.from_environment(literal)
    assert (deployed.backend, deployed.platform) == ("kubernetes", "nitro")
    assert deployed.port_min <= deployed.port_max and deployed.default_ttl <= deployed.max_ttl
    names = Settings.names()
    for field in (
        "state_machine_arn",
        "admin_principals",
        "functions_table",
        "kube_ca_data",
        "program_load_secret_arn",
    ):
        assert not isinstance(variables[names[field]], str), f"{field} should be a reference to a deployed resource"
    # only the CCFaaS API starts executions; the others get the table's empty default
    for spec in SPECS.values():
        if spec.settings and spec.handler != SPECS["Ccfaas"].handler:
            assert functions[spec.handler]["Environment"]["Variables"][names["state_machine_arn"]] == ""
