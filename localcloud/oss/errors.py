"""OSS error answers: status, code, message and extra ``<Error>`` fields."""

from __future__ import annotations

MESSAGES: dict[str, tuple[int, str]] = {
    "AccessDenied": (403, "You have no right to access this object because of bucket acl."),
    "InvalidAccessKeyId": (403, "The OSS Access Key Id you provided does not exist in our records."),
    "SignatureDoesNotMatch": (403, "The request signature we calculated does not match the signature you "
                                   "provided. Check your key and signing method."),
    "NoSuchBucket": (404, "The specified bucket does not exist."),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NoSuchVersion": (404, "The specified version does not exist."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "NoSuchUpload": (404, "The specified upload does not exist. The upload ID may be invalid, or the "
                          "upload may have been aborted or completed."),
    "FileAlreadyExists": (409, "The object you specified already exists and can not be overwritten."),
    "InvalidArgument": (400, "Invalid argument."),
    "InvalidDigest": (400, "The Content-MD5 you specified was invalid."),
    "InvalidRange": (416, "The requested range cannot be satisfied."),
    "EntityTooSmall": (400, "Your proposed upload smaller than the minimum allowed size."),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size."),
    "InvalidPart": (400, "One or more of the specified parts could not be found or the specified entity "
                         "tag might not have matched the part's entity tag."),
    "InvalidPartOrder": (400, "The list of parts was not in ascending order. The parts list must be "
                              "specified in order by part number."),
    "MalformedXML": (400, "The XML you provided was not well-formed or did not validate against our "
                          "published schema."),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold."),
    "NotModified": (304, "Not Modified."),
    "ServiceUnavailable": (503, "Service is temporarily unavailable. Please try again later."),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "NotImplemented": (501, "This operation is not supported by the local OSS emulator."),
}


class OssError(Exception):
    """An OSS error answer. ``details`` become extra ``<Error>`` children (Key, ArgumentName...)."""

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None,
                 **details: str) -> None:
        default_status, default_message = MESSAGES.get(code, (500, code))
        self.code = code
        self.status = status if status is not None else default_status
        self.message = message if message is not None else default_message
        self.details = {name: str(value) for name, value in details.items() if value is not None}
        super().__init__(f"{self.status} {code}: {self.message}")


def invalid_argument(name: str, value: str, message: str) -> OssError:
    return OssError("InvalidArgument", message, ArgumentName=name, ArgumentValue=value)
