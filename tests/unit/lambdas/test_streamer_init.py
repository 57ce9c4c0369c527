"""The streamer's import-time work (Lambda's init phase): S3's model is loaded, credentials are not resolved."""

from __future__ import annotations

import botocore.session
import pytest

from lambdas.s3stream.streamer import load_s3_model


def test_loading_s3s_model_runs_no_credential_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off Lambda the chain would end probing instance metadata at import; each request's client has its own
    keys. Review finding: the model's client had resolved them (the chain is botocore's, the oracle here)."""

    def resolve(self: object) -> None:
        raise AssertionError("load_s3_model resolved credentials")

    monkeypatch.setattr(botocore.session.Session, "get_credentials", resolve)
    load_s3_model()
