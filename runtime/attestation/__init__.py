"""The proxy attestation service for the local (simulated linux) platform."""
