"""The AWS deployment's setup custom resource: fills the identity secrets on deploy.

CloudFormation calls it (through the CDK provider framework) on Create, Update
and Delete. Create and Update make the program-load identity and the proxy
attestation CA unless their secrets already hold usable ones, so a redeploy
renews what is about to expire and never rotates a working CA under running
instances. Delete does nothing: CloudFormation deletes the secrets themselves.
Only secret ARNs and whether each was written are logged, never their values.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.shared.identity import ensure_certificate_authority, ensure_identity

logger = Logger()
PHYSICAL_ID = "ipoc-deployment-identities"


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = event["RequestType"]
    if request == "Delete":
        return {"PhysicalResourceId": event.get("PhysicalResourceId", PHYSICAL_ID)}
    properties = event["ResourceProperties"]
    wrote_identity = ensure_identity(properties["ProgramLoadSecretArn"])
    wrote_ca = ensure_certificate_authority(
        properties["ProxyCaCertificateSecretArn"], properties["ProxyCaKeySecretArn"]
    )
    logger.info(
        "deployment identities checked",
        extra={"request": request, "program_load_written": wrote_identity, "proxy_ca_written": wrote_ca},
    )
    return {
        "PhysicalResourceId": PHYSICAL_ID,
        "Data": {"ProgramLoadWritten": str(wrote_identity), "ProxyCaWritten": str(wrote_ca)},
    }
