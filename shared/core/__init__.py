"""The pure core: no I/O and no httpx, azure or msal imports; time comes in as `now`."""
