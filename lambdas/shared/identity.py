"""The deployment's identities: the program-load identity and, in AWS, the proxy attestation CA.

The program-load identity (certificate and key) provisions programs and data
files: its certificate goes into every composed policy; its key never leaves
the control plane. In AWS it lives in one Secrets Manager secret
(``{"certificate": PEM, "key": PEM}``); on one machine, in two files that
``ipoc local up`` creates. The proxy CA lives in two plain-PEM secrets (the
proxy's init container copies them to files without parsing anything).
The deployment's setup function fills the secrets once with :func:`ensure_identity`
and :func:`ensure_certificate_authority`; nothing here logs a key.
"""

from __future__ import annotations

import datetime as _dt
import json
from functools import cache
from pathlib import Path

from ipoc.certs import Identity, key_matches_certificate, load_certificate, new_certificate_authority, new_identity
from ipoc.errors import CertificateError
from lambdas.shared import aws
from lambdas.shared.config import Settings, settings

PROGRAM_LOAD_NAME = "ipoc-program-load"
PROGRAM_LOAD_DAYS = 365
CA_DAYS = 5 * 365
RENEW_WITHIN = _dt.timedelta(days=30)


def secret_text(secret_id: str) -> str:
    return aws.client("secretsmanager").get_secret_value(SecretId=secret_id)["SecretString"]


def program_load_identity() -> Identity:
    """The identity this process's settings name (read once per settings: a secret or two files)."""
    return _program_load_identity(settings())


@cache
def _program_load_identity(config: Settings) -> Identity:
    if config.program_load_secret_arn:
        document = json.loads(secret_text(config.program_load_secret_arn))
        return Identity(certificate=document["certificate"], private_key=document["key"])
    if config.program_load_cert_file and config.program_load_key_file:
        return Identity(
            certificate=Path(config.program_load_cert_file).read_text(),
            private_key=Path(config.program_load_key_file).read_text(),
        )
    raise RuntimeError(
        "no program-load identity: set IPOC_PROGRAM_LOAD_SECRET_ARN, "
        "or IPOC_PROGRAM_LOAD_CERT_FILE and IPOC_PROGRAM_LOAD_KEY_FILE"
    )


def usable(identity: Identity | None, now: _dt.datetime, renew_within: _dt.timedelta) -> bool:
    """A certificate and matching key that stay valid for longer than ``renew_within``."""
    if identity is None:
        return False
    try:
        certificate = load_certificate(identity.certificate)
        return key_matches_certificate(identity.private_key, identity.certificate) and (
            certificate.not_valid_after_utc > now + renew_within
        )
    except (CertificateError, ValueError, TypeError):
        return False


def _stored_identity(secret_id: str) -> Identity | None:
    try:
        document = json.loads(secret_text(secret_id))
        return Identity(certificate=document["certificate"], private_key=document["key"])
    except (ValueError, KeyError, TypeError):
        return None  # CloudFormation's initial random string, or a hand-edited value


def ensure_identity(secret_id: str, *, now: _dt.datetime | None = None) -> bool:
    """Fill ``secret_id`` with a program-load identity unless it holds a usable one; True if it wrote."""
    now = now or _dt.datetime.now(_dt.UTC)
    if usable(_stored_identity(secret_id), now, RENEW_WITHIN):
        return False
    identity = new_identity(PROGRAM_LOAD_NAME, days=PROGRAM_LOAD_DAYS)
    document = json.dumps({"certificate": identity.certificate, "key": identity.private_key})
    aws.client("secretsmanager").put_secret_value(SecretId=secret_id, SecretString=document)
    return True


def ensure_certificate_authority(certificate_secret: str, key_secret: str, *, now: _dt.datetime | None = None) -> bool:
    """Fill the proxy CA's two secrets unless they hold a usable pair; True if it wrote.

    Replacing the CA invalidates the ``proxy_service_cert`` of every running
    instance's policy, so a usable CA is never replaced, only an expiring one.
    """
    now = now or _dt.datetime.now(_dt.UTC)
    try:
        stored: Identity | None = Identity(
            certificate=secret_text(certificate_secret), private_key=secret_text(key_secret)
        )
    except aws.client("secretsmanager").exceptions.ResourceNotFoundException:
        stored = None
    if usable(stored, now, RENEW_WITHIN):
        return False
    authority = new_certificate_authority(days=CA_DAYS, now=now)
    client = aws.client("secretsmanager")
    client.put_secret_value(SecretId=key_secret, SecretString=authority.private_key)
    client.put_secret_value(SecretId=certificate_secret, SecretString=authority.certificate)
    return True
