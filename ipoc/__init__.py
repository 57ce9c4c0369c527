"""i-PoC core: policies, rights, certificates and the Veracruz wire protocol.

Everything else in the repository imports from here; this package imports
nothing of ours, so it can ship inside every Lambda and the runtime alike.
"""

__version__ = "0.1.0"
