"""The AWS deployment's stack outputs a client reads: infra/ declares them, ``ipoc profile from-stack`` reads them.

Their names live here, in the package both may import, so neither imports the other.
"""

from __future__ import annotations

OUTPUT_API_URL = "ApiUrl"  # the REST API's stage URL (one API serves all three services)
OUTPUT_REGION = "Region"  # the region requests are signed for
OUTPUT_INPUTS_BUCKET = "InputsBucket"  # where `ipoc camera upload` puts encrypted inputs
