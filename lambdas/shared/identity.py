"""The CCFaaS program-load identity: the certificate and key that provision programs and data files.

Its certificate goes into every composed policy; its key never leaves the
control plane. In AWS both live in one Secrets Manager secret
(``{"certificate": PEM, "key": PEM}``); on one machine, in two files that
``ipoc local up`` creates. Read once per process.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from ipoc.certs import Identity
from lambdas.shared import aws
from lambdas.shared.config import settings


@cache
def program_load_identity() -> Identity:
    config = settings()
    if config.program_load_secret_arn:
        secret = aws.client("secretsmanager").get_secret_value(SecretId=config.program_load_secret_arn)
        document = json.loads(secret["SecretString"])
        return Identity(certificate=document["certificate"], private_key=document["key"])
    if config.program_load_cert_file and config.program_load_key_file:
        return Identity(
            certificate=Path(config.program_load_cert_file).read_text(),
            private_key=Path(config.program_load_key_file).read_text(),
        )
    raise RuntimeError(
        "no program-load identity: set IPOC_PROGRAM_LOAD_SECRET_ARN, or IPOC_PROGRAM_LOAD_CERT_FILE and IPOC_PROGRAM_LOAD_KEY_FILE"
    )
