"""Item 3: two identities whose certificates share a subject (and carry no key identifiers) both connect.

The seed's user app makes the S3 app's and the user's certificates from one
cert.conf. OpenSSL's chain building picks a trust anchor by subject name, so
before the fix only the first of the two could complete the handshake. The
runtime must match a client to the policy's identities by exact certificate.
"""

from __future__ import annotations

import pytest

from ipoc.client import VeracruzClient
from ipoc.errors import VeracruzError
from runtime.measurement import measurement
from tests.compat.identities import cert_conf_identity
from tests.compat.shapes import generate_policy
from tests.support.waiting import free_port

S3_RIGHTS = [{"file_name": "/s3_app_input/", "rights": 534084}]
USER_RIGHTS = [{"file_name": "/user_input/", "rights": 534084}]


def test_both_same_subject_identities_connect_each_as_itself(launcher, proxy):
    s3, user = cert_conf_identity(), cert_conf_identity()
    assert s3.certificate != user.certificate
    text = generate_policy(
        "linux",
        [(s3, S3_RIGHTS), (user, USER_RIGHTS)],
        measurement=measurement(),
        proxy_url=proxy.url,
        proxy_cert=proxy.ca_pem,
        server_url=f"127.0.0.1:{free_port()}",
    )
    runtime = launcher.serve(text)
    with VeracruzClient(runtime.policy, s3.certificate, s3.private_key) as client:
        client.write_file("/s3_app_input/in_enc.h264", b"video")
    with VeracruzClient(runtime.policy, user.certificate, user.private_key) as client:
        assert client.identity_id == 1
        client.write_file("/user_input/key", b"k" * 16)
    # each is mapped to its own identity: the user may not write where only the S3 app may
    with VeracruzClient(runtime.policy, user.certificate, user.private_key) as client:
        with pytest.raises(VeracruzError):
            client.write_file("/s3_app_input/in_enc.h264", b"forged")
    assert (runtime.scratch / "fs" / "s3_app_input" / "in_enc.h264").read_bytes() == b"video"


def test_a_third_same_subject_certificate_is_still_refused(launcher, proxy):
    """Matching by exact certificate: sharing the subject of a policy identity gives no access."""
    s3, user, outsider = cert_conf_identity(), cert_conf_identity(), cert_conf_identity()
    text = generate_policy(
        "linux",
        [(s3, S3_RIGHTS), (user, USER_RIGHTS)],
        measurement=measurement(),
        proxy_url=proxy.url,
        proxy_cert=proxy.ca_pem,
        server_url=f"127.0.0.1:{free_port()}",
    )
    runtime = launcher.serve(text)
    client = VeracruzClient(runtime.policy, outsider.certificate, outsider.private_key, check_identity=False)
    with pytest.raises(VeracruzError, match="refused our identity|handshake"):
        client.connect()
