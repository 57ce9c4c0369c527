"""Sizes the API and its clients agree on, written once."""

from __future__ import annotations

# The largest program or data file sent in one request body: API Gateway's payload limit is 10 MB and a Lambda's
# 6 MB, base64 included. Larger files go straight to S3 through a presigned upload. The server's limit is a
# setting (IPOC_DIRECT_UPLOAD_LIMIT) defaulting to this; the CLI switches to presigned uploads above it.
DIRECT_UPLOAD_LIMIT = 4 * 1024 * 1024

# Runtime ports (one slot, one runtime, and in AWS one load-balancer listener each) a deployment or a local stack
# may have: infra/config.py's portRange and `ipoc local up --runtime-ports` hold to it.
MAX_RUNTIME_PORTS = 100
