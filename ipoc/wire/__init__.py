"""The Veracruz v1.3 wire protocol: protobuf messages, framing, TLS and the HTTP carrier.

``transport_protocol_pb2`` is generated from ``transport_protocol.proto`` by
``make proto`` (grpcio-tools) and committed; a test regenerates it and checks
that nothing changed.
"""
