"""State: the three DynamoDB tables (keys from ``lambdas.shared.tables``) and the S3 buckets."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_s3 as s3
from constructs import Construct

from lambdas.shared.tables import ALL_TABLES, STAGING_PREFIX, TableSpec


def _bucket(scope: Construct, id: str, *, access_logs: s3.IBucket | None, versioned: bool) -> s3.Bucket:
    """Private, TLS-only, encrypted; multipart uploads nobody finished are aborted after a day."""
    return s3.Bucket(
        scope,
        id,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        versioned=versioned,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=f"{id.lower()}/" if access_logs else None,
        removal_policy=RemovalPolicy.RETAIN,
        lifecycle_rules=[
            s3.LifecycleRule(id="abort-incomplete-multipart", abort_incomplete_multipart_upload_after=Duration.days(1))
        ],
    )


class DataStores(Construct):
    """``tables`` maps each TableSpec's logical name to its table; ``artifacts`` and ``inputs`` are the buckets."""

    def __init__(self, scope: Construct, id: str, *, noncurrent_days: int = 30) -> None:
        super().__init__(scope, id)
        self.tables: dict[str, dynamodb.Table] = {spec.logical_name: self._table(spec) for spec in ALL_TABLES}
        self.access_logs = s3.Bucket(
            self,
            "AccessLogs",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            removal_policy=RemovalPolicy.RETAIN,
            lifecycle_rules=[s3.LifecycleRule(id="expire-access-logs", expiration=Duration.days(365))],
        )
        self.artifacts = _bucket(self, "Artifacts", access_logs=self.access_logs, versioned=True)
        # Presigned uploads wait under the staging prefix until their hash is checked; abandoned ones expire.
        self.artifacts.add_lifecycle_rule(
            id="expire-abandoned-uploads", prefix=STAGING_PREFIX, expiration=Duration.days(2)
        )
        self.artifacts.add_lifecycle_rule(
            id="expire-noncurrent", noncurrent_version_expiration=Duration.days(noncurrent_days)
        )
        # The users' private inputs (encrypted camera videos) that the S3 streamer may read.
        self.inputs = _bucket(self, "Inputs", access_logs=self.access_logs, versioned=False)

    def _table(self, spec: TableSpec) -> dynamodb.Table:
        key = dynamodb.Attribute(name=spec.partition_key, type=dynamodb.AttributeType.STRING)
        table = dynamodb.Table(
            self,
            spec.logical_name.capitalize(),
            partition_key=key,
            sort_key=dynamodb.Attribute(name=spec.sort_key, type=dynamodb.AttributeType.STRING)
            if spec.sort_key
            else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=spec.ttl_attribute,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        return table
