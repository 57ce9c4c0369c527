"""S3 failing in the middle of a stream into an instance (moto S3 in process, a real runtime).

The read from S3's response stream is made to fail after some bytes, the way a reset connection
or a read timeout surfaces in botocore; the streamer must answer 502 naming S3 and the step, and
leave the instance usable (a retry copies the whole object).
"""

from __future__ import annotations

import os

import pytest
from botocore.exceptions import ReadTimeoutError, ResponseStreamingError
from botocore.response import StreamingBody

from lambdas.s3stream.handler import lambda_handler as s3stream
from tests.reliability.tally import TALLY
from tests.support.aws import call, input_key
from tests.support.s3stream import body, put, read_back

FAULTS = {
    "read timeout": lambda: ReadTimeoutError(endpoint_url="https://s3.amazonaws.com"),
    "connection reset": lambda: ResponseStreamingError(error=ConnectionResetError(104, "Connection reset by peer")),
}


@pytest.mark.parametrize("after_chunks", [0, 1, 5])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_s3_failing_mid_stream_is_a_502_and_a_retry_copies_everything(setup, ids, monkeypatch, fault, after_chunks):  # noqa: F811
    payload = os.urandom(2 * 1024 * 1024 + 5)
    put(setup, "video.enc", payload)
    original = StreamingBody.read
    reads = {"n": 0}

    def failing_read(self, amt=None):
        reads["n"] += 1
        if reads["n"] > after_chunks:
            raise FAULTS[fault]()
        return original(self, amt)

    monkeypatch.setattr(StreamingBody, "read", failing_read)
    reply = call(s3stream, "POST", "/s3_stream_veracruz", body(setup, ids, "video.enc"))
    TALLY.add(faults_injected=1)
    assert reply.status == 502, reply.body
    assert reply.json["message"].startswith(
        f"Not able to read bucket {setup.inputs} file {input_key('video.enc')} from S3"
    )
    monkeypatch.setattr(StreamingBody, "read", original)
    retried = call(s3stream, "POST", "/s3_stream_veracruz", body(setup, ids, "video.enc"))
    assert retried.status == 200 and read_back(setup) == payload
