"""SOAP in and out: the request envelope read (server version, impersonation, the operation) and
the answers written (response messages, SOAP faults), in the namespaces and shapes EWS uses.

Rules (harsher than the docs where they are vague): the body must be a SOAP 1.1 envelope in
the EWS messages namespace, `RequestServerVersion` must name a version this server knows and is
not newer than the server (else ErrorInvalidServerVersion), an `ExchangeImpersonation` header
must carry exactly one of PrimarySmtpAddress, SmtpAddress or PrincipalName.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
T = "http://schemas.microsoft.com/exchange/services/2006/types"
M = "http://schemas.microsoft.com/exchange/services/2006/messages"
E = "http://schemas.microsoft.com/exchange/services/2006/errors"
NSMAP = {"s": SOAP, "t": T, "m": M}

# RequestServerVersion values in the order Exchange introduced them.
VERSIONS = (
    "Exchange2007",
    "Exchange2007_SP1",
    "Exchange2010",
    "Exchange2010_SP1",
    "Exchange2010_SP2",
    "Exchange2013",
    "Exchange2013_SP1",
    "Exchange2016",
    "V2015_10_05",
    "V2016_01_06",
    "V2016_04_13",
    "V2016_07_13",
    "V2016_10_10",
    "V2017_01_07",
    "V2017_04_14",
    "V2017_07_11",
    "V2017_10_09",
    "V2018_01_08",
)
SERVER_BUILDS = {  # (major, minor, build, revision) that ServerVersionInfo reports
    "Exchange2013": (15, 0, 1497, 2),
    "Exchange2016": (15, 1, 2507, 6),
    "Exchange2019": (15, 2, 1544, 4),
}


class SoapError(Exception):
    """The request is not a usable EWS SOAP request (HTTP 400 / 500 like IIS)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True)
class SoapRequest:
    operation: str
    body: etree._Element
    version: str
    impersonate: str | None  # the SMTP address (or UPN) to act as


def t(name: str) -> str:
    return f"{{{T}}}{name}"


def m(name: str) -> str:
    return f"{{{M}}}{name}"


def parse_request(data: bytes, server_version: str) -> SoapRequest:
    try:
        root = etree.fromstring(
            data, parser=etree.XMLParser(resolve_entities=False, no_network=True)
        )
    except etree.XMLSyntaxError as exc:
        raise SoapError(
            "ErrorSchemaValidation", f"The request failed schema validation: {exc}"
        ) from None
    if root.tag != f"{{{SOAP}}}Envelope":
        raise SoapError("ErrorSchemaValidation", "The request is not a SOAP 1.1 envelope.")
    header = root.find(f"{{{SOAP}}}Header")
    body = root.find(f"{{{SOAP}}}Body")
    if body is None or len(body) != 1:
        raise SoapError("ErrorSchemaValidation", "The SOAP body must hold exactly one operation.")
    operation = body[0]
    if etree.QName(operation).namespace != M:
        raise SoapError("ErrorSchemaValidation", f"{operation.tag} is not an EWS operation.")
    version, impersonate = "Exchange2007_SP1", None
    if header is not None:
        rsv = header.find(t("RequestServerVersion"))
        if rsv is not None:
            version = rsv.get("Version", "")
        imp = header.find(t("ExchangeImpersonation"))
        if imp is not None:
            sid = imp.find(t("ConnectingSID"))
            names = (
                []
                if sid is None
                else [
                    (c.text or "").strip()
                    for c in sid
                    if etree.QName(c).localname
                    in ("PrimarySmtpAddress", "SmtpAddress", "PrincipalName")
                ]
            )
            if len(names) != 1 or not names[0]:
                raise SoapError(
                    "ErrorImpersonationFailed",
                    "ExchangeImpersonation must name exactly one user (ConnectingSID).",
                )
            impersonate = names[0]
    newest = "Exchange2013_SP1" if server_version == "Exchange2013" else VERSIONS[-1]
    if version not in VERSIONS or VERSIONS.index(version) > VERSIONS.index(newest):
        raise SoapError(
            "ErrorInvalidServerVersion", f"The specified server version is invalid: {version!r}."
        )
    return SoapRequest(etree.QName(operation).localname, operation, version, impersonate)


def envelope(server_version: str, body: etree._Element) -> bytes:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"s": SOAP})
    header = etree.SubElement(env, f"{{{SOAP}}}Header")
    major, minor, build, rev = SERVER_BUILDS.get(server_version, SERVER_BUILDS["Exchange2016"])
    info = etree.SubElement(header, t("ServerVersionInfo"), nsmap={"h": T})
    for key, value in (
        ("MajorVersion", major),
        ("MinorVersion", minor),
        ("MajorBuildNumber", build),
        ("MinorBuildNumber", rev),
    ):
        info.set(key, str(value))
    info.set("Version", "V2017_07_11" if server_version != "Exchange2013" else "Exchange2013_SP1")
    etree.SubElement(env, f"{{{SOAP}}}Body").append(body)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def response(operation: str) -> tuple[etree._Element, etree._Element]:
    """(the XxxResponse element, its ResponseMessages container)."""
    root = etree.Element(m(f"{operation}Response"), nsmap={"m": M, "t": T})
    return root, etree.SubElement(root, m("ResponseMessages"))


def message(messages: etree._Element, operation: str) -> etree._Element:
    msg = etree.SubElement(messages, m(f"{operation}ResponseMessage"), ResponseClass="Success")
    etree.SubElement(msg, m("ResponseCode")).text = "NoError"
    return msg


# messages.xsd: their response messages (ItemInfoResponseMessageType) require Items, errors too.
ITEM_INFO_OPERATIONS = frozenset({"CreateItem", "UpdateItem", "GetItem"})


def error_message(messages: etree._Element, operation: str, code: str, text: str) -> None:
    msg = etree.SubElement(messages, m(f"{operation}ResponseMessage"), ResponseClass="Error")
    etree.SubElement(msg, m("MessageText")).text = text
    etree.SubElement(msg, m("ResponseCode")).text = code
    etree.SubElement(msg, m("DescriptiveLinkKey")).text = "0"
    if operation in ITEM_INFO_OPERATIONS:
        etree.SubElement(msg, m("Items"))


def fault(server_version: str, code: str, text: str, *, back_off_ms: int | None = None) -> bytes:
    """A SOAP fault as Exchange writes it (faultcode, faultstring, detail with the code)."""
    body = etree.Element(f"{{{SOAP}}}Fault", nsmap={"s": SOAP})
    kind = "a:ErrorServerBusy" if code == "ErrorServerBusy" else f"a:{code}"
    fc = etree.SubElement(body, "faultcode", nsmap={"a": T})
    fc.text = kind
    etree.SubElement(
        body, "faultstring", {"{http://www.w3.org/XML/1998/namespace}lang": "en-US"}
    ).text = text
    detail = etree.SubElement(body, "detail")
    etree.SubElement(detail, f"{{{E}}}ResponseCode", nsmap={"e": E}).text = code
    etree.SubElement(detail, f"{{{E}}}Message", nsmap={"e": E}).text = text
    if back_off_ms is not None:
        xml = etree.SubElement(detail, t("MessageXml"), nsmap={"t": T})
        etree.SubElement(xml, t("Value"), Name="BackOffMilliseconds").text = str(back_off_ms)
    return envelope(server_version, body)


def ews_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(text: str | None, what: str) -> datetime:
    if not text:
        raise SoapError("ErrorSchemaValidation", f"{what} is missing.")
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise SoapError(
            "ErrorSchemaValidation", f"{what} is not an xs:dateTime: {text!r}"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
