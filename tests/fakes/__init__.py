"""In-memory stand-ins for the stores (``lambdas.shared.stores``' Protocols), for fast unit tests without moto.

Each fake keeps the real store's contract (conditional writes, consistent
reads, what a missing item answers); ``tests/functional/lambdas/test_store_contract.py``
runs the same assertions against fake and real, so they cannot drift apart.
"""

from tests.fakes.stores import FakeArtifactStore, FakeFunctionStore, FakeInstanceStore, FakeSlotStore, FakeWorkflow

__all__ = ["FakeArtifactStore", "FakeFunctionStore", "FakeInstanceStore", "FakeSlotStore", "FakeWorkflow"]
