"""The data plane on one machine: a Veracruz-compatible runtime and proxy attestation service.

This is the Veracruz "linux platform" model: real TLS and real policy
enforcement, but simulated attestation and **no hardware isolation**: the
host can read everything the runtime holds. Use it to develop and test; in
AWS, instances run Veracruz on Nitro Enclaves.
"""

SIMULATION_NOTICE = (
    "linux platform: simulated attestation, no hardware isolation "
    "(the host can read this runtime's memory and files; use Nitro Enclaves for real confidentiality)"
)
