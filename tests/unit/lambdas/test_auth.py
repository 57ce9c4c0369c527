"""lambdas/shared/auth.py: who is calling, and when a role session counts as the role an admin pattern names.

The ARN forms are IAM's: a role session calls as ``arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION``,
while operators write ``arn:aws:iam::ACCOUNT:role/ROLE`` (or a path, or a wildcard) in IPOC_ADMIN_PRINCIPALS.
"""

from __future__ import annotations

import pytest

from ipoc.errors import Forbidden
from lambdas.shared.auth import caller, is_admin, principal_id, require_admin
from lambdas.shared.config import Settings
from tests.support.settings import use_settings

SESSION = "arn:aws:sts::123456789012:assumed-role/ipoc-admin/operator-session"


@pytest.fixture
def admins(monkeypatch):
    def set_admins(*patterns: str) -> None:
        use_settings(monkeypatch, Settings(), IPOC_ADMIN_PRINCIPALS=",".join(patterns))

    return set_admins


def event(user_arn: str | None = None, caller_id: str | None = None, user: str | None = None) -> dict:
    return {"requestContext": {"identity": {"userArn": user_arn, "caller": caller_id, "user": user}}}


@pytest.mark.parametrize(
    "pattern",
    [
        "arn:aws:iam::123456789012:role/ipoc-admin",  # the role the session assumed
        "arn:aws:iam::123456789012:role/ipoc-*",  # a wildcard over role names
        SESSION,  # the session itself
        "arn:aws:sts::123456789012:assumed-role/ipoc-admin/*",  # any session of the role
    ],
)
def test_a_role_session_is_admin_by_its_role_or_its_session(admins, pattern):
    admins(pattern)
    assert is_admin(SESSION)
    assert require_admin(event(SESSION)) == SESSION


@pytest.mark.parametrize(
    "principal",
    [
        "arn:aws:sts::123456789012:assumed-role/ipoc-admin-not/operator-session",  # a role whose name only starts alike
        "arn:aws:sts::210987654321:assumed-role/ipoc-admin/operator-session",  # the same role name in another account
        "arn:aws:sts::123456789012:federated-user/ipoc-admin",  # not a role session at all
        "arn:aws:iam::123456789012:user/ipoc-admin",  # a user named like the role
        "arn:aws:sts::123456789012:assumed-role",  # malformed: no role
    ],
)
def test_other_principals_do_not_become_the_role(admins, principal):
    admins("arn:aws:iam::123456789012:role/ipoc-admin")
    assert not is_admin(principal)
    with pytest.raises(Forbidden, match="is not an i-PoC administrator"):
        require_admin(event(principal))


def test_a_role_pattern_in_another_partition_does_not_match(admins):
    admins("arn:aws:iam::123456789012:role/ipoc-admin")
    assert not is_admin("arn:aws-cn:sts::123456789012:assumed-role/ipoc-admin/s")
    admins("arn:aws-cn:iam::123456789012:role/ipoc-admin")
    assert is_admin("arn:aws-cn:sts::123456789012:assumed-role/ipoc-admin/s")


def test_no_admins_configured_means_nobody_is_admin(admins):
    admins()
    assert not is_admin(SESSION)


def test_the_caller_is_the_user_arn_then_the_caller_id_then_anonymous():
    assert caller(event(SESSION, "AROAEXAMPLE:operator-session")) == SESSION
    assert caller(event(None, "AROAEXAMPLE:operator-session")) == "AROAEXAMPLE:operator-session"
    assert caller(event()) == "anonymous"
    assert caller({}) == "anonymous" and caller({"requestContext": None}) == "anonymous"
    assert principal_id(event(SESSION, user="AROAEXAMPLE:operator-session")) == "AROAEXAMPLE:operator-session"
    assert principal_id({}) == ""
