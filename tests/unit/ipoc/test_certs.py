"""Certificate normalisation and identities."""

from __future__ import annotations

import re

import pytest

from ipoc.certs import (
    certificate_der,
    key_matches_certificate,
    new_identity,
    normalise_certificate,
    split_pem_certificates,
    standard_pem,
    write_private,
)
from ipoc.errors import CertificateError


def original_cert_str_to_string_veracruz(pem: str) -> str:
    """The original CCFaaS regex, for comparison on well-formed PEMs."""
    return re.sub("([^-])\n([^-])|\n$", r"\g<1>\g<2>", pem)


def test_normalisation_matches_the_original_on_real_certificates():
    pem = new_identity("x").certificate
    normal = normalise_certificate(pem)
    assert normal == original_cert_str_to_string_veracruz(pem)
    assert normal.startswith("-----BEGIN CERTIFICATE-----\n") and normal.endswith("\n-----END CERTIFICATE-----")
    assert normal.count("\n") == 2
    assert normalise_certificate(normal) == normal  # idempotent
    assert normalise_certificate(pem.replace("\n", "\r\n")) == normal


def test_normalised_and_standard_forms_have_the_same_der():
    pem = new_identity("x").certificate
    assert certificate_der(normalise_certificate(pem)) == certificate_der(pem)
    assert standard_pem(normalise_certificate(pem)) == pem


def test_normalisation_refuses_not_one_certificate():
    one = new_identity("a").certificate
    with pytest.raises(CertificateError, match="exactly one"):
        normalise_certificate(one + one)
    with pytest.raises(CertificateError, match="exactly one"):
        normalise_certificate("hello")
    assert len(split_pem_certificates(one + one)) == 2


def test_key_match_and_private_files(tmp_path):
    a, b = new_identity("a"), new_identity("b")
    assert key_matches_certificate(a.private_key, a.certificate)
    assert not key_matches_certificate(b.private_key, a.certificate)
    write_private(tmp_path / "k.pem", b"secret")
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
