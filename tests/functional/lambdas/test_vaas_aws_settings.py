"""The kubernetes backend configured the way the CDK app configures the Lambdas (moto Secrets Manager)."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from ipoc.certs import new_certificate_authority
from lambdas.vaas.backends.kubernetes import KubernetesBackend, ca_file_from_data
from tests.support.aws import REGION, configure
from tests.support.settings import use_settings


def test_cluster_ca_data_becomes_a_private_file_once() -> None:
    pem = new_certificate_authority().certificate.encode()
    first = ca_file_from_data(base64.b64encode(pem).decode())
    assert Path(first).read_bytes() == pem
    assert stat.S_IMODE(Path(first).stat().st_mode) == 0o600
    assert ca_file_from_data(base64.b64encode(pem).decode()) == first


def test_cluster_ca_data_that_is_not_a_certificate_is_refused() -> None:
    with pytest.raises(RuntimeError, match="IPOC_K8S_CA_DATA"):
        ca_file_from_data(base64.b64encode(b"hello").decode())


def test_backend_reads_the_proxy_ca_from_secrets_manager(monkeypatch) -> None:
    with mock_aws():
        configure(monkeypatch)
        authority = new_certificate_authority()
        arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="ca-cert", SecretString=authority.certificate
        )["ARN"]
        cluster_ca = base64.b64encode(authority.certificate.encode()).decode()
        use_settings(
            monkeypatch,
            IPOC_VAAS_BACKEND="kubernetes",
            IPOC_K8S_HOST="https://example.eks.amazonaws.com",
            IPOC_EKS_CLUSTER="ipoc",
            IPOC_K8S_CA_DATA=cluster_ca,
            IPOC_PROXY_CERT_SECRET_ARN=arn,
            IPOC_RUNTIME_HASH="ab" * 32,
            IPOC_PLATFORM="nitro",
            IPOC_ENDPOINT_HOST="nlb.example",
        )
        backend = KubernetesBackend.from_settings()
        setup = backend.runtime_setup()
        assert setup.proxy_cert == authority.certificate
        assert (setup.platform, setup.endpoint_host, setup.runtime_hash) == ("nitro", "nlb.example", "ab" * 32)


def test_backend_without_a_proxy_ca_says_which_setting_is_missing(monkeypatch) -> None:
    with mock_aws():
        configure(monkeypatch, IPOC_K8S_HOST="https://example", IPOC_EKS_CLUSTER="ipoc", IPOC_PROXY_CERT="")
        with pytest.raises(RuntimeError, match="IPOC_PROXY_CERT_SECRET_ARN"):
            KubernetesBackend.from_settings()
