"""Whose objects the S3 streamer may read, and into whose instances it may write (the streamer and CCFaaS share it).

The streamer runs with a role that can read the inputs bucket, and it opens
TLS connections to whatever a policy names; without these rules any caller
could have it read another user's object or deliver into a runtime (or any
host:port) of the caller's choosing: a confused deputy. So:

* **Source.** With credentials in the request the streamer reads with them, and
  S3 decides. Without them it reads with its own role only objects the caller
  owns: keys under ``users/<principal id>/`` in the inputs bucket, where the
  principal id is IAM's ``${aws:userid}`` (a bucket policy can give each user
  write access to that prefix alone; locally it is the user's name).
* **Target.** The policy must be, byte for byte, the policy CCFaaS recorded for
  a READY instance the caller owns (administrators: anyone's, and runtimes they
  created through VaaS). A policy edited to point elsewhere matches nothing.

Every refusal is a 403 that says what would be accepted. Finding the instance
is a filtered scan by policy hash (the tables hold hundreds of items; an index
on ``instance_hash`` would make it a query).
"""

from __future__ import annotations

from typing import Any

from ipoc.errors import Forbidden
from ipoc.policy import instance_hash
from lambdas.shared.auth import caller, is_admin, principal_id
from lambdas.shared.config import settings
from lambdas.shared.stores import InstanceStore, SlotStore

USERS_PREFIX = "users/"


def input_prefix(owner_id: str) -> str:
    """The caller's own prefix of the inputs bucket."""
    return f"{USERS_PREFIX}{owner_id}/"


def check_source(bucket: str, key: str, owner_id: str) -> None:
    """Refuse a read with the service's own role of anything but the caller's own inputs."""
    inputs = settings().inputs_bucket
    if not owner_id or "/" in owner_id:
        raise Forbidden("the caller has no principal id to own inputs by; pass your own credentials in $.s3 instead")
    prefix = input_prefix(owner_id)
    rest = key[len(prefix) :] if key.startswith(prefix) else ""
    if bucket != inputs or not rest or any(part in ("", ".", "..") for part in rest.split("/")):
        raise Forbidden(
            f"without credentials the S3 streamer reads only your own inputs, under s3://{inputs}/{prefix}; "
            f"s3://{bucket}/{key} is not one of them: upload it there, or put your own aws_access_key_id and "
            "aws_secret_access_key in $.s3 so that S3 checks your rights"
        )


def check_target(policy_text: str, principal: str) -> None:
    """Refuse a policy that is not the exact policy of a READY instance the caller may use."""
    digest = instance_hash(policy_text)
    admin = is_admin(principal)
    for record in InstanceStore().matching("instance_hash", digest):
        if (
            record.get("policy") == policy_text
            and record.get("status") == "READY"
            and (admin or record.get("owner") == principal)
        ):
            return
    if admin and any(slot.get("state") == "RUNNING" for slot in SlotStore().matching("instance_hash", digest)):
        return  # a runtime an administrator started through VaaS: its policy is the service's own too
    raise Forbidden(
        "the S3 streamer delivers only into your own READY instances, with the exact policy CCFaaS returned "
        "(GET /instance/<id> shows it); this policy is not one of them"
    )


def authorise(event: Any, *, bucket: str, key: str, policy_text: str, with_credentials: bool) -> None:
    """Both rules for one request (the source rule only when the service's own role would read)."""
    if not with_credentials:
        check_source(bucket, key, principal_id(event))
    check_target(policy_text, caller(event))
