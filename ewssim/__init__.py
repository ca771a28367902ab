"""A simulator of Exchange Web Services on premises (Exchange Server 2016/2019/SE): SOAP over
HTTPS on loopback, Basic and NTLM authentication, ExchangeImpersonation, the calendar operations
calsync's EWS provider issues, realistic faults, and a JSON control API under /_sim.
See ewssim/README.md."""
