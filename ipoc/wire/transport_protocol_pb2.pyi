from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResponseStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UNSET: _ClassVar[ResponseStatus]
    SUCCESS: _ClassVar[ResponseStatus]
    FAILED_INVALID_ROLE: _ClassVar[ResponseStatus]
    FAILED_NOT_READY: _ClassVar[ResponseStatus]
    FAILED_GENERIC: _ClassVar[ResponseStatus]
    FAILED_VM_ERROR: _ClassVar[ResponseStatus]
    FAILED_ERROR_CODE_RETURNED: _ClassVar[ResponseStatus]
    FAILED_INVALID_REQUEST: _ClassVar[ResponseStatus]
UNSET: ResponseStatus
SUCCESS: ResponseStatus
FAILED_INVALID_ROLE: ResponseStatus
FAILED_NOT_READY: ResponseStatus
FAILED_GENERIC: ResponseStatus
FAILED_VM_ERROR: ResponseStatus
FAILED_ERROR_CODE_RETURNED: ResponseStatus
FAILED_INVALID_REQUEST: ResponseStatus

class Data(_message.Message):
    __slots__ = ("file_name", "data")
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    data: bytes
    def __init__(self, file_name: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class Read(_message.Message):
    __slots__ = ("file_name",)
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    def __init__(self, file_name: _Optional[str] = ...) -> None: ...

class RequestResult(_message.Message):
    __slots__ = ("file_name",)
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    def __init__(self, file_name: _Optional[str] = ...) -> None: ...

class RequestPiHash(_message.Message):
    __slots__ = ("file_name",)
    FILE_NAME_FIELD_NUMBER: _ClassVar[int]
    file_name: str
    def __init__(self, file_name: _Optional[str] = ...) -> None: ...

class RequestProxyPsaAttestationToken(_message.Message):
    __slots__ = ("challenge",)
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    challenge: bytes
    def __init__(self, challenge: _Optional[bytes] = ...) -> None: ...

class RequestShutdown(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RequestPolicyHash(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PsaAttestationInit(_message.Message):
    __slots__ = ("challenge", "device_id")
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    challenge: bytes
    device_id: int
    def __init__(self, challenge: _Optional[bytes] = ..., device_id: _Optional[int] = ...) -> None: ...

class RuntimeManagerRequest(_message.Message):
    __slots__ = ("context", "write_file", "append_file", "request_pi_hash", "request_result", "request_proxy_psa_attestation_token", "request_shutdown", "psa_attestation_init", "request_policy_hash", "read_file")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    WRITE_FILE_FIELD_NUMBER: _ClassVar[int]
    APPEND_FILE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_PI_HASH_FIELD_NUMBER: _ClassVar[int]
    REQUEST_RESULT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_PROXY_PSA_ATTESTATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_SHUTDOWN_FIELD_NUMBER: _ClassVar[int]
    PSA_ATTESTATION_INIT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_POLICY_HASH_FIELD_NUMBER: _ClassVar[int]
    READ_FILE_FIELD_NUMBER: _ClassVar[int]
    context: int
    write_file: Data
    append_file: Data
    request_pi_hash: RequestPiHash
    request_result: RequestResult
    request_proxy_psa_attestation_token: RequestProxyPsaAttestationToken
    request_shutdown: RequestShutdown
    psa_attestation_init: PsaAttestationInit
    request_policy_hash: RequestPolicyHash
    read_file: Read
    def __init__(self, context: _Optional[int] = ..., write_file: _Optional[_Union[Data, _Mapping]] = ..., append_file: _Optional[_Union[Data, _Mapping]] = ..., request_pi_hash: _Optional[_Union[RequestPiHash, _Mapping]] = ..., request_result: _Optional[_Union[RequestResult, _Mapping]] = ..., request_proxy_psa_attestation_token: _Optional[_Union[RequestProxyPsaAttestationToken, _Mapping]] = ..., request_shutdown: _Optional[_Union[RequestShutdown, _Mapping]] = ..., psa_attestation_init: _Optional[_Union[PsaAttestationInit, _Mapping]] = ..., request_policy_hash: _Optional[_Union[RequestPolicyHash, _Mapping]] = ..., read_file: _Optional[_Union[Read, _Mapping]] = ...) -> None: ...

class Result(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class PiHash(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ErrorCode(_message.Message):
    __slots__ = ("error",)
    ERROR_FIELD_NUMBER: _ClassVar[int]
    error: bytes
    def __init__(self, error: _Optional[bytes] = ...) -> None: ...

class State(_message.Message):
    __slots__ = ("state",)
    STATE_FIELD_NUMBER: _ClassVar[int]
    state: bytes
    def __init__(self, state: _Optional[bytes] = ...) -> None: ...

class PolicyHash(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class Cert(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class RuntimeManagerResponse(_message.Message):
    __slots__ = ("status", "context", "result", "pi_hash", "error", "state", "policy_hash", "cert")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PI_HASH_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    POLICY_HASH_FIELD_NUMBER: _ClassVar[int]
    CERT_FIELD_NUMBER: _ClassVar[int]
    status: ResponseStatus
    context: int
    result: Result
    pi_hash: PiHash
    error: ErrorCode
    state: State
    policy_hash: PolicyHash
    cert: Cert
    def __init__(self, status: _Optional[_Union[ResponseStatus, str]] = ..., context: _Optional[int] = ..., result: _Optional[_Union[Result, _Mapping]] = ..., pi_hash: _Optional[_Union[PiHash, _Mapping]] = ..., error: _Optional[_Union[ErrorCode, _Mapping]] = ..., state: _Optional[_Union[State, _Mapping]] = ..., policy_hash: _Optional[_Union[PolicyHash, _Mapping]] = ..., cert: _Optional[_Union[Cert, _Mapping]] = ...) -> None: ...

class StartMsg(_message.Message):
    __slots__ = ("protocol", "firmware_version")
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    FIRMWARE_VERSION_FIELD_NUMBER: _ClassVar[int]
    protocol: str
    firmware_version: str
    def __init__(self, protocol: _Optional[str] = ..., firmware_version: _Optional[str] = ...) -> None: ...

class NativePsaAttestationToken(_message.Message):
    __slots__ = ("token", "device_id", "csr")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    CSR_FIELD_NUMBER: _ClassVar[int]
    token: bytes
    device_id: int
    csr: bytes
    def __init__(self, token: _Optional[bytes] = ..., device_id: _Optional[int] = ..., csr: _Optional[bytes] = ...) -> None: ...

class ProxyPsaAttestationToken(_message.Message):
    __slots__ = ("token", "pubkey", "device_id")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    PUBKEY_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    token: bytes
    pubkey: bytes
    device_id: int
    def __init__(self, token: _Optional[bytes] = ..., pubkey: _Optional[bytes] = ..., device_id: _Optional[int] = ...) -> None: ...

class NitroAttestationDoc(_message.Message):
    __slots__ = ("doc", "device_id")
    DOC_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    doc: bytes
    device_id: int
    def __init__(self, doc: _Optional[bytes] = ..., device_id: _Optional[int] = ...) -> None: ...

class ProxyAttestationServerRequest(_message.Message):
    __slots__ = ("context", "start_msg", "native_psa_attestation_token", "proxy_psa_attestation_token", "nitro_attestation_doc")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    START_MSG_FIELD_NUMBER: _ClassVar[int]
    NATIVE_PSA_ATTESTATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    PROXY_PSA_ATTESTATION_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NITRO_ATTESTATION_DOC_FIELD_NUMBER: _ClassVar[int]
    context: int
    start_msg: StartMsg
    native_psa_attestation_token: NativePsaAttestationToken
    proxy_psa_attestation_token: ProxyPsaAttestationToken
    nitro_attestation_doc: NitroAttestationDoc
    def __init__(self, context: _Optional[int] = ..., start_msg: _Optional[_Union[StartMsg, _Mapping]] = ..., native_psa_attestation_token: _Optional[_Union[NativePsaAttestationToken, _Mapping]] = ..., proxy_psa_attestation_token: _Optional[_Union[ProxyPsaAttestationToken, _Mapping]] = ..., nitro_attestation_doc: _Optional[_Union[NitroAttestationDoc, _Mapping]] = ...) -> None: ...

class CertChain(_message.Message):
    __slots__ = ("root_cert", "enclave_cert")
    ROOT_CERT_FIELD_NUMBER: _ClassVar[int]
    ENCLAVE_CERT_FIELD_NUMBER: _ClassVar[int]
    root_cert: bytes
    enclave_cert: bytes
    def __init__(self, root_cert: _Optional[bytes] = ..., enclave_cert: _Optional[bytes] = ...) -> None: ...

class ProxyAttestationServerResponse(_message.Message):
    __slots__ = ("context", "psa_attestation_init", "cert_chain")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    PSA_ATTESTATION_INIT_FIELD_NUMBER: _ClassVar[int]
    CERT_CHAIN_FIELD_NUMBER: _ClassVar[int]
    context: int
    psa_attestation_init: PsaAttestationInit
    cert_chain: CertChain
    def __init__(self, context: _Optional[int] = ..., psa_attestation_init: _Optional[_Union[PsaAttestationInit, _Mapping]] = ..., cert_chain: _Optional[_Union[CertChain, _Mapping]] = ...) -> None: ...
