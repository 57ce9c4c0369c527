"""``ipoc instance``: create, list, show and delete instances."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from client.api import ApiError
from client.cli.policy.loading import load_json
from ipoc.errors import IpocError

if TYPE_CHECKING:
    from client.cli.application import Application

FAILING = ("TEARING_DOWN", "FAILED")  # a failed instance: tearing down, or torn down
ENDED = (*FAILING, "DELETED")  # statuses an instance never leaves for READY


@click.group(short_help="Create and manage instances (users)")
def instance() -> None:
    """Instances of registered functions, each an attested runtime with its own policy."""


def _row(record: dict[str, Any]) -> list[str]:
    function = (
        f"{record.get('function', '')}:{record['version']}" if record.get("version") else record.get("function", "")
    )
    return [record["instance_id"], function, record.get("status", ""), record.get("reason") or ""]


@instance.command(short_help="Create an instance from a user policy")
@click.argument("user_policy", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--wait", default=25, show_default=True, type=click.IntRange(0, 25), help="Seconds to wait for READY.")
@click.option("--ttl", type=click.IntRange(min=60), default=None, help="Seconds the instance may live. [default: 3600]")
@click.option(
    "--policy-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the exact policy text here once READY.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the instance record as JSON.")
@click.pass_obj
def create(
    app: Application, user_policy: Path, wait: int, ttl: int | None, policy_out: Path | None, as_json: bool
) -> None:
    """Create an instance from USER_POLICY (the seed's user policy: function, instanceid, identities)."""
    params = {"wait": str(wait), **({"ttl": str(ttl)} if ttl else {})}
    try:
        body = load_json(user_policy)
    except IpocError as exc:
        app.abort(exc.message)
    api = app.api()
    try:
        reply = api.call("ccfaas", "POST", "/instance", body=body, params=params)
        instance_id = reply.get("instance") or reply["instance_id"]
        record = api.call("ccfaas", "GET", f"/instance/{instance_id}")
    except ApiError as exc:
        app.abort(exc.message)
    if policy_out and record.get("policy"):
        policy_out.write_text(record["policy"])
    if as_json:
        app.terminal.display_json(record)
    else:
        app.terminal.display(
            f"Instance {instance_id}: {record['status']}" + (f" ({record['reason']})" if record.get("reason") else "")
        )
        if policy_out and record.get("policy"):
            app.terminal.display(f"Policy written to {policy_out}")
    if policy_out and not record.get("policy") and record["status"] not in FAILING:
        app.terminal.display_warning(
            f"no policy written to {policy_out}: instance {instance_id} is not READY yet; "
            f"`ipoc instance show {instance_id} --policy-out {policy_out}` writes it once READY"
        )
    if record["status"] in FAILING:
        raise SystemExit(1)


@instance.command("list", short_help="List your instances")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def list_(app: Application, as_json: bool) -> None:
    """List your instances (administrators see everyone's)."""
    details = app.call("ccfaas", "GET", "/instance")["details"]
    if as_json:
        app.terminal.display_json(details)
        return
    columns, rows = ["Instance", "Function", "Status", "Reason"], [_row(d) for d in details]
    if len({d.get("owner") for d in details}) > 1:  # an administrator's list: two owners may use one name
        columns.insert(1, "Owner")
        for row, record in zip(rows, details, strict=True):
            row.insert(1, (record.get("owner") or "").split(":", 5)[-1])  # an ARN's resource: user/alice
    app.terminal.display_table("Instances", columns, rows)


@instance.command(short_help="Show an instance")
@click.argument("instance_id")
@click.option(
    "--policy-out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the exact policy text here (once READY).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show(app: Application, instance_id: str, policy_out: Path | None, as_json: bool) -> None:
    """Show INSTANCE_ID: status, reason, its workflow execution and, once READY, its policy."""
    record = app.call("ccfaas", "GET", f"/instance/{instance_id}")
    if policy_out and record.get("policy"):
        policy_out.write_text(record["policy"])
    if as_json:
        app.terminal.display_json(record)
    else:
        _display(app, instance_id, record)
    if policy_out and not record.get("policy"):  # asked for, and not there: a script must not go on without it
        ended = record["status"] in ENDED
        app.abort(
            f"instance {instance_id} is {record['status']}"
            + (f" ({record['reason']})" if record.get("reason") else "")
            + (": it has no policy" if ended else ": it has a policy once READY")
            + f"; nothing written to {policy_out}"
        )


def _display(app: Application, instance_id: str, record: dict[str, Any]) -> None:
    fields = [
        "status",
        "reason",
        "function",
        "version",
        "owner",
        "created_at",
        "veracruz_server_url",
        "instance_hash",
        "execution_arn",
    ]
    app.terminal.display_table(
        f"Instance {instance_id}", ["Field", "Value"], [[f, str(record[f])] for f in fields if record.get(f)]
    )


@instance.command(short_help="Delete an instance")
@click.argument("instance_id")
@click.option("--json", "as_json", is_flag=True, help="Print the final record as JSON.")
@click.pass_obj
def delete(app: Application, instance_id: str, as_json: bool) -> None:
    """Release INSTANCE_ID: its workflow tears it down; waits (bounded) until it is DELETED."""
    record = app.call("ccfaas", "DELETE", f"/instance/{instance_id}")
    if as_json:
        app.terminal.display_json(record)
    else:
        app.terminal.display(f"Instance {instance_id}: {record['status']}")
