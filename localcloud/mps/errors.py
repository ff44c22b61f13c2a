"""The POP gateway's error answers, as the MPS emulator gives them (mps.md §5)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ApiError(Exception):
    """One error answer: ``{"RequestId", "HostId", "Code", "Message", "Recommend"}`` with ``status``."""

    code: str
    message: str
    status: int = 400
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def missing_parameter(name: str) -> ApiError:
    return ApiError("MissingParameter",
                    f'The input parameter "{name}" that is mandatory for processing this request '
                    "is not supplied.")


def invalid_parameter(name: str) -> ApiError:
    return ApiError("InvalidParameter", f'The specified value of parameter "{name}" is not valid.')


def incomplete_signature(detail: str) -> ApiError:
    return ApiError("IncompleteSignature",
                    f"The request signature does not conform to Aliyun standards. {detail}")


def signature_mismatch(server_string: str) -> ApiError:
    return ApiError("SignatureDoesNotMatch",
                    "Specified signature is not matched with our calculation. "
                    f"server string to sign is:{server_string}", 403)


def access_key_not_found(detail: str = "") -> ApiError:
    return ApiError("InvalidAccessKeyId.NotFound",
                    ("The Access Key ID provided does not exist in our records. " + detail).strip(), 404)


def token_mismatch() -> ApiError:
    return ApiError("InvalidSecurityToken.MismatchWithAccessKey",
                    "Specified SecurityToken mismatch with the AccessKey.")


def illegal_timestamp(name: str) -> ApiError:
    return ApiError("IllegalTimestamp",
                    f'The input parameter "{name}" that is mandatory for processing this request is not '
                    "supplied or is not in the format yyyy-MM-ddTHH:mm:ssZ (UTC).")


def timestamp_expired() -> ApiError:
    return ApiError("InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")


def nonce_used() -> ApiError:
    return ApiError("SignatureNonceUsed", "Specified signature nonce was used already.")


def action_not_found() -> ApiError:
    return ApiError("InvalidAction.NotFound", "Specified api is not found, please check your url and method.",
                    404)


def invalid_version() -> ApiError:
    return ApiError("InvalidVersion", "Specified parameter Version is not valid.")


def unsupported_method() -> ApiError:
    return ApiError("UnsupportedHTTPMethod", "This http method is not supported.")


def throttling(retry_after: int | None, user: bool = False) -> ApiError:
    headers = {"x-acs-retry-after": str(retry_after)} if retry_after else {}
    if user:
        return ApiError("Throttling.User", "Request was denied due to user flow control.", 400, headers)
    return ApiError("Throttling", "Request was denied due to request throttling.", 400, headers)


def service_unavailable() -> ApiError:
    return ApiError("ServiceUnavailable", "The request has failed due to a temporary failure of the server.",
                    503)


def internal_error() -> ApiError:
    return ApiError("InternalError",
                    "The request processing has failed due to some unknown error, exception or failure.", 500)


def fault_error(kind: str, retry_after: int | None) -> ApiError:
    """The answer for an injected fault kind (``503``, ``500``, ``throttle``, ``throttle_user``)."""
    if kind == "503":
        return service_unavailable()
    if kind == "throttle":
        return throttling(retry_after)
    if kind == "throttle_user":
        return throttling(retry_after, user=True)
    return internal_error()
