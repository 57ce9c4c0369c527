"""CLI profiles: where the services are and how to authenticate, in ``~/.config/ipoc/config.toml``.

A ``local`` profile (written by ``ipoc local up``) names the local stack's
endpoints and the local user; an ``aws`` profile names the API Gateway URLs and a
region, and requests are signed with the caller's AWS credentials (SigV4).
``IPOC_CONFIG`` points elsewhere; ``--profile``/``IPOC_PROFILE`` choose one
(default: ``local``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ipoc.stack_outputs import OUTPUT_API_URL, OUTPUT_INPUTS_BUCKET, OUTPUT_REGION  # an ``aws`` profile is made of them

SERVICES = ("ccfaas", "vaas", "s3stream")


class ProfileError(Exception):
    pass


@dataclass
class Profile:
    name: str
    kind: str  # "local" or "aws"
    endpoints: dict[str, str]
    region: str = "us-east-1"
    user: str = "local-admin"  # local only: the caller the local adapter reports
    s3_endpoint: str | None = None  # local only: the local S3
    inputs_bucket: str | None = None  # where `ipoc camera upload` puts encrypted inputs by default

    def endpoint(self, service: str) -> str:
        try:
            return self.endpoints[service].rstrip("/")
        except KeyError:
            raise ProfileError(f"profile {self.name!r} has no {service} endpoint") from None


def config_path() -> Path:
    if os.environ.get("IPOC_CONFIG"):
        return Path(os.environ["IPOC_CONFIG"]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ipoc" / "config.toml"


def load_all(path: Path | None = None) -> dict[str, Profile]:
    path = path or config_path()
    if not path.exists():
        return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"cannot read the profiles file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path} is not valid TOML: {exc}") from None
    tables = document.get("profiles", {})
    if not isinstance(tables, dict):
        raise ProfileError(f"{path}: `profiles` must be tables, one [profiles.NAME] per profile")
    profiles = {}
    for name, table in tables.items():
        where = f"profile {name!r} in {path}"
        if not isinstance(table, dict):
            raise ProfileError(f"{where} must be a table: [profiles.{name}] with its keys below it")
        for key, value in table.items():
            if not isinstance(value, str):
                raise ProfileError(f'{where}: {key} must be a string (key = "..."), not {value!r}')
        kind = table.get("type", "local")
        if kind not in ("local", "aws"):
            raise ProfileError(f"{where}: type must be 'local' or 'aws', not {kind!r}")
        profiles[name] = Profile(
            name=name,
            kind=kind,
            endpoints={s: table[s] for s in SERVICES if s in table},
            region=table.get("region", "us-east-1"),
            user=table.get("user", "local-admin"),
            s3_endpoint=table.get("s3_endpoint"),
            inputs_bucket=table.get("inputs_bucket"),
        )
    return profiles


def load(name: str | None = None) -> Profile:
    name = name or os.environ.get("IPOC_PROFILE") or "local"
    profiles = load_all()
    if name not in profiles:
        hint = (
            "start the local stack with `ipoc local up --detach`"
            if name == "local"
            else f"add [profiles.{name}] to {config_path()}"
        )
        raise ProfileError(f"no profile {name!r} in {config_path()}: {hint}")
    return profiles[name]


def save(profile: Profile, path: Path | None = None) -> Path:
    """Write or replace one profile, keeping the others."""
    path = path or config_path()
    profiles = load_all(path)
    profiles[profile.name] = profile
    lines = ["# i-PoC CLI profiles (ipoc local up writes [profiles.local])", ""]
    for p in profiles.values():
        lines.append(f"[profiles.{p.name}]")
        values = {"type": p.kind, **p.endpoints, "region": p.region}
        if p.kind == "local":
            values["user"] = p.user
            if p.s3_endpoint:
                values["s3_endpoint"] = p.s3_endpoint
        if p.inputs_bucket:
            values["inputs_bucket"] = p.inputs_bucket
        lines += [f'{key} = "{_escape(value)}"' for key, value in values.items()]
        lines.append("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path


def from_stack_outputs(name: str, outputs: dict[str, str]) -> Profile:
    """An ``aws`` profile from the AWS deployment's stack outputs: one API serves all three services."""
    missing = [key for key in (OUTPUT_API_URL, OUTPUT_REGION) if not outputs.get(key)]
    if missing:
        raise ProfileError(
            f"the stack has no output {', '.join(missing)}: is it the i-PoC platform stack (default name Ipoc)?"
        )
    url = outputs[OUTPUT_API_URL].rstrip("/")
    return Profile(
        name=name,
        kind="aws",
        endpoints={service: url for service in SERVICES},
        region=outputs[OUTPUT_REGION],
        inputs_bucket=outputs.get(OUTPUT_INPUTS_BUCKET) or None,
    )


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"')
