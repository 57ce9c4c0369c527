"""DynamoDB table definitions: one constant per table, used by the stores, by ``local/``
(which creates the tables in moto) and by ``infra/`` (which creates them in AWS), so
the tables every deployment builds have the same keys; and the one S3 layout rule infra/ needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TableSpec:
    logical_name: str
    partition_key: str
    sort_key: str | None = None
    ttl_attribute: str | None = None

    def create_table_kwargs(self, table_name: str) -> dict[str, Any]:
        """Arguments for boto3 ``create_table`` (on-demand billing, string keys, no secondary index: the stores
        read what they rely on consistently, which DynamoDB offers only on a table's own keys)."""
        attributes = {self.partition_key} | ({self.sort_key} if self.sort_key else set())
        key_schema = [{"AttributeName": self.partition_key, "KeyType": "HASH"}]
        if self.sort_key:
            key_schema.append({"AttributeName": self.sort_key, "KeyType": "RANGE"})
        kwargs: dict[str, Any] = {
            "TableName": table_name,
            "KeySchema": key_schema,
            "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
            "BillingMode": "PAY_PER_REQUEST",
        }
        return kwargs


# One partition per function name: an item per version ("version#0000000001") and per alias ("alias#prod").
FUNCTIONS = TableSpec("functions", partition_key="function", sort_key="item")
INSTANCES = TableSpec("instances", partition_key="instance_id", ttl_attribute="expires_at")
SLOTS = TableSpec("slots", partition_key="slot")
ALL_TABLES = (FUNCTIONS, INSTANCES, SLOTS)


# Presigned uploads land in the artifacts bucket under this prefix until their hash is checked; the AWS
# bucket's lifecycle rule (infra/) expires what is left behind.
STAGING_PREFIX = "uploads/"
