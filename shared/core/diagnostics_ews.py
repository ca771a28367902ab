"""Pure: test connection's findings for a tenant on Exchange Server (EWS), in an
administrator's words: which EWS response code means what, and the fix.

Rule: the steps follow what a round needs and what attendant consoles call "General
connection" (the URL reached, TLS trusted, the service account accepted: a 401 with NTLM or
Basic fails here) and "Send/receive data" (impersonation allowed for the mailbox, the mailbox
exists, its calendar readable). Each EWS code maps to one cause and one fix; an unknown code is
shown as EWS gave it.
https://learn.microsoft.com/exchange/client-developer/web-service-reference/responsecode
"""

from __future__ import annotations

_EXPLAINED: dict[str, tuple[str, str]] = {
    "Unauthorized": (
        "the server refused the service account's user name or password (HTTP 401)",
        "check the username in MAILBOX_PROVIDERS (DOMAIN\\user or user@domain), the password "
        "in its secret, and that the auth type (NTLM or Basic) is enabled on the EWS virtual "
        "directory (Get-WebServicesVirtualDirectory | fl *Authentication)",
    ),
    "ErrorImpersonateUserDenied": (
        "the service account may not impersonate this mailbox",
        "assign it the ApplicationImpersonation role: New-ManagementRoleAssignment -Name "
        "calsync-impersonation -Role ApplicationImpersonation -User <service account> "
        "(scoped with -CustomRecipientWriteScope to include the mailbox)",
    ),
    "ErrorNonExistentMailbox": (
        "the server has no mailbox with this SMTP address",
        "enrol the mailbox by its primary SMTP address (Get-Mailbox <name> | fl "
        "PrimarySmtpAddress); a mailbox in Exchange Online needs the Graph provider",
    ),
    "ErrorAccessDenied": (
        "the calendar could not be read with the service account's rights",
        "check that the impersonation scope includes this mailbox and that nothing denies the "
        "account on the calendar folder",
    ),
    "ErrorServerBusy": (
        "the server is throttling the service account (EWS throttling policy)",
        "wait the back-off it asks for; if it persists, give the account a throttling policy "
        "with higher EWS limits (New-ThrottlingPolicy, Set-ThrottlingPolicyAssociation)",
    ),
    "ErrorInvalidServerVersion": (
        "the server does not speak the Exchange version the settings pin",
        "lower exchangeVersion in MAILBOX_PROVIDERS to the server's version or older",
    ),
}
_NETWORK: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (
        ("name or service not known", "nodename nor servname", "getaddrinfo", "no address"),
        "the EWS host name does not resolve (DNS)",
        "check ewsUrl's host; from Azure, the app needs DNS for the on-premises zone (VNet "
        "integration with a private DNS resolver or forwarder, or a Hybrid Connection)",
    ),
    (
        ("certificate", "ssl", "tls"),
        "the TLS handshake failed or the server's certificate is not trusted",
        "give the server a certificate from a public CA (or one the app trusts) whose name "
        "matches ewsUrl's host, and TLS 1.2",
    ),
    (
        ("refused", "timed out", "timeout", "unreachable", "reset"),
        "the EWS endpoint could not be reached over the network",
        "open the path from Azure to the server on 443: VNet integration with a site-to-site "
        "VPN or ExpressRoute, or an App Service Hybrid Connection to the server",
    ),
)


def explain_ews_code(code: str) -> tuple[str, str]:
    """(cause, fix) for an EWS response code (or `Unauthorized` for a 401)."""
    return _EXPLAINED.get(code, (f"EWS answered {code}", "see the EWS response code's meaning"))


def explain_network(text: str) -> tuple[str, str]:
    """(cause, fix) for a failure to reach the endpoint, from the error's text."""
    lowered = text.lower()
    for needles, cause, fix in _NETWORK:
        if any(n in lowered for n in needles):
            return cause, fix
    return (
        f"the EWS endpoint gave no usable answer ({text})",
        "check ewsUrl (it ends in /EWS/Exchange.asmx) and the network path from Azure",
    )
