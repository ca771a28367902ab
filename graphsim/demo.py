"""The demo data set loaded by `python -m graphsim --seed-demo`.

Rule: fixed, documented identifiers (README.md lists them) so the demo and manual runs can
sign in without asking the control API: one tenant, one app with a client secret and admin
consent for Calendars.ReadWrite and User.Read.All, two users with a few events of each kind,
and the app's secret stored in the vault as `graph-client-secret`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from graphsim.model.directory import AppSecret, Directory
from graphsim.model.vault import Vault

DEMO_TENANT_ID = "7d6f1a52-3b7c-4d0e-9a51-6c2f8e4b1d01"
DEMO_TENANT_DOMAIN = "contoso.example"
DEMO_CLIENT_ID = "3f2a9c1e-8b4d-4e6f-a2c7-5d9e0b1f4a21"
DEMO_CLIENT_SECRET = "graphsim-demo-secret"
DEMO_USERS = ("adele@contoso.example", "ben@contoso.example")


def seed_demo(d: Directory, vault: Vault, now: datetime) -> None:
    """Load the demo data set into a directory and a vault, with events around `now`."""
    d.add_tenant(DEMO_TENANT_ID, DEMO_TENANT_DOMAIN, "Contoso (demo)")
    app = d.add_app(DEMO_CLIENT_ID, DEMO_TENANT_ID, "calsync demo")
    app.secrets.append(AppSecret(DEMO_CLIENT_SECRET, None))
    d.grant_consent(DEMO_TENANT_ID, DEMO_CLIENT_ID, ["Calendars.ReadWrite", "User.Read.All"])
    now = now.replace(minute=0, second=0, microsecond=0)
    day = now.date().isoformat()
    for upn in DEMO_USERS:
        user = d.add_user(DEMO_TENANT_ID, upn, name=upn.split("@")[0].title() + " Demo")
        store = d.mailboxes[user.id.lower()].store
        start = now + timedelta(hours=2)
        store.create(
            {
                "subject": "Customer call",
                "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                "end": {
                    "dateTime": (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S"),
                    "timeZone": "UTC",
                },
                "showAs": "busy",
            },
            now,
        )
        store.create(
            {
                "subject": "Team stand-up",
                "start": {"dateTime": f"{day}T09:00:00", "timeZone": "W. Europe Standard Time"},
                "end": {"dateTime": f"{day}T09:15:00", "timeZone": "W. Europe Standard Time"},
                "recurrence": {
                    "pattern": {
                        "type": "weekly",
                        "interval": 1,
                        "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                    },
                    "range": {"type": "noEnd", "startDate": day},
                },
            },
            now,
        )
    vault.tenant_id = DEMO_TENANT_ID
    vault.set_secret("graph-client-secret", DEMO_CLIENT_SECRET, now=now)
