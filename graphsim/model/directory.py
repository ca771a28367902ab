"""The simulated directory: tenants, app registrations, consents, users and their mailboxes.

Rule: this module is the only owner of who exists and who may do what. A tenant is found by id
or by domain; an app registration lives in its home tenant and becomes usable in another tenant
only through admin consent (a service principal with granted application permissions). Each user
owns one mailbox: a CalendarStore (the default calendar) and its DeltaEngine, and may own more
calendars (`add_calendar`), each a Mailbox view of the same user with its own store, delta engine
and id. A room or equipment mailbox is a user whose `kind` says so (Exchange resource mailboxes
are user objects with a mailbox; `GET /places/microsoft.graph.room` lists the rooms).
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes

from graphsim.errors import GraphRequestError
from graphsim.model.calendar.delta import DeltaEngine
from graphsim.model.calendar.store import CalendarStore

ChangeListener = Callable[["Mailbox", str, str], None]


@dataclass
class AppSecret:
    value: str
    expires: datetime | None
    key_id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class AppCertificate:
    pem: bytes
    sha1_b64: str
    sha256_b64: str

    @classmethod
    def from_pem(cls, pem: bytes) -> AppCertificate:
        import base64

        cert = x509.load_pem_x509_certificate(pem)

        def b64(digest: bytes) -> str:
            return base64.urlsafe_b64encode(digest).decode().rstrip("=")

        return cls(
            pem=pem,
            sha1_b64=b64(cert.fingerprint(hashes.SHA1())),  # noqa: S303 - x5t is SHA-1 by spec
            sha256_b64=b64(cert.fingerprint(hashes.SHA256())),
        )


@dataclass
class App:
    client_id: str
    home_tenant: str
    display_name: str
    secrets: list[AppSecret] = field(default_factory=list)
    certificates: list[AppCertificate] = field(default_factory=list)


@dataclass
class Tenant:
    id: str
    domain: str
    display_name: str
    # client_id -> granted application permissions; a key present with an empty set is a
    # service principal without admin consent (AADSTS65001).
    service_principals: dict[str, set[str]] = field(default_factory=dict)
    consented: set[str] = field(default_factory=set)
    # client_id -> the user ids an Exchange application access policy (RestrictAccess) leaves
    # the app; absent: no policy, every mailbox of the tenant.
    # https://learn.microsoft.com/graph/auth-limit-mailbox-access
    access_policies: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class User:
    id: str
    upn: str
    display_name: str
    tenant_id: str
    kind: str = "user"  # "user", "room" or "equipment" (a resource mailbox)

    def as_graph(self) -> dict[str, object]:
        """The user entity as `GET /users/{id}` returns it (default property set)."""
        return {
            "businessPhones": [],
            "displayName": self.display_name,
            "givenName": self.display_name.split(" ")[0] if self.display_name else None,
            "jobTitle": None,
            "mail": self.upn,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": "en-US",
            "surname": self.display_name.split(" ")[-1] if " " in self.display_name else None,
            "userPrincipalName": self.upn,
            "id": self.id,
        }


def calendar_id(user_id: str, name: str = "") -> str:
    """The id of a user's default calendar (or of its calendar `name`): stable, and shaped like
    Exchange's (standard base64, so it holds '/', '+' and '=' often enough)."""
    seed = f"calendar:{user_id.lower()}" + (f":{name}" if name else "")
    digest = hashlib.sha256(seed.encode()).digest()
    return base64.b64encode(b"\x00\x03\x24\x00" + digest + b"\x00\x01").decode()


@dataclass(eq=False)
class Mailbox:
    """A user's mailbox as its default calendar, or (`owner` set) one more calendar of it."""

    user: User
    store: CalendarStore
    delta: DeltaEngine
    cal_id: str = ""  # "" = the default calendar
    name: str = "Calendar"
    can_edit: bool = True
    color: str = "auto"
    owner: Mailbox | None = None  # the default calendar's mailbox, for another calendar
    calendars: dict[str, Mailbox] = field(default_factory=dict)  # the other calendars, by id

    @property
    def calendar_id(self) -> str:
        return self.cal_id or calendar_id(self.user.id)

    @property
    def primary(self) -> Mailbox:
        return self.owner or self

    def all_calendars(self) -> list[Mailbox]:
        """The default calendar first, then the others in creation order."""
        primary = self.primary
        return [primary, *primary.calendars.values()]

    def calendar(self, cid: str) -> Mailbox:
        """The calendar with Graph id `cid` (the default one by its id too); 404 if none."""
        primary = self.primary
        if cid == primary.calendar_id:
            return primary
        found = primary.calendars.get(cid)
        if found is None:
            raise GraphRequestError(
                404, "ErrorItemNotFound", "The specified object was not found in the store."
            )
        return found

    def holding(self, event_id: str) -> Mailbox:
        """The calendar holding event `event_id` (the default one when none does: its 404)."""
        for box in self.all_calendars():
            if box.store.holds(event_id):
                return box
        return self.primary


class Directory:
    def __init__(self, *, seed: int = 0) -> None:
        self.tenants: dict[str, Tenant] = {}
        self._tenant_by_domain: dict[str, Tenant] = {}
        self.apps: dict[str, App] = {}
        self.users: dict[str, User] = {}
        self._user_by_upn: dict[str, User] = {}
        self.mailboxes: dict[str, Mailbox] = {}
        self.listeners: list[ChangeListener] = []
        self.seed = seed
        # Applied to every mailbox's DeltaEngine (new and existing): see Knobs.
        self.delta_options: dict[str, object] = {}

    # --- tenants and apps -------------------------------------------------------------
    def add_tenant(self, tenant_id: str, domain: str, display_name: str = "") -> Tenant:
        tenant = Tenant(tenant_id, domain.lower(), display_name or domain)
        self.tenants[tenant_id.lower()] = tenant
        self._tenant_by_domain[tenant.domain] = tenant
        return tenant

    def find_tenant(self, key: str) -> Tenant | None:
        lowered = key.lower()
        return self.tenants.get(lowered) or self._tenant_by_domain.get(lowered)

    def add_app(self, client_id: str, home_tenant: str, display_name: str = "") -> App:
        tenant = self.find_tenant(home_tenant)
        if tenant is None:
            raise ValueError(f"unknown home tenant {home_tenant!r}: create the tenant first")
        app = App(client_id, tenant.id, display_name or client_id)
        self.apps[client_id.lower()] = app
        # The home tenant always has the app's service principal (no consent yet).
        tenant.service_principals.setdefault(client_id.lower(), set())
        return app

    def grant_consent(self, tenant_key: str, client_id: str, roles: list[str]) -> None:
        tenant = self.find_tenant(tenant_key)
        if tenant is None:
            raise ValueError(f"unknown tenant {tenant_key!r}")
        if client_id.lower() not in self.apps:
            raise ValueError(f"unknown app {client_id!r}: register it first")
        tenant.service_principals[client_id.lower()] = set(roles)
        tenant.consented.add(client_id.lower())

    def restrict_access(self, tenant_key: str, client_id: str, users: list[str] | None) -> None:
        """An application access policy: only `users` (ids or UPNs) for the app; None lifts it."""
        tenant = self.find_tenant(tenant_key)
        if tenant is None:
            raise ValueError(f"unknown tenant {tenant_key!r}")
        if users is None:
            tenant.access_policies.pop(client_id.lower(), None)
            return
        tenant.access_policies[client_id.lower()] = {
            self.mailbox_for(u).user.id.lower() for u in users
        }

    def allows(self, tenant_id: str, client_id: str, user_id: str) -> bool:
        """Whether an access policy of the tenant lets the app reach this user's mailbox."""
        tenant = self.find_tenant(tenant_id)
        if tenant is None:
            return True
        allowed = tenant.access_policies.get(client_id.lower())
        return allowed is None or user_id.lower() in allowed

    def revoke_consent(self, tenant_key: str, client_id: str) -> None:
        tenant = self.find_tenant(tenant_key)
        if tenant is None:
            raise ValueError(f"unknown tenant {tenant_key!r}")
        tenant.consented.discard(client_id.lower())
        if client_id.lower() in tenant.service_principals:
            tenant.service_principals[client_id.lower()] = set()

    # --- users and mailboxes ----------------------------------------------------------
    def add_user(
        self, tenant_key: str, upn: str, *, user_id: str = "", name: str = "", kind: str = "user"
    ) -> User:
        tenant = self.find_tenant(tenant_key)
        if tenant is None:
            raise ValueError(f"unknown tenant {tenant_key!r}")
        if upn.lower() in self._user_by_upn:
            raise ValueError(f"user {upn!r} already exists")
        if kind not in ("user", "room", "equipment"):
            raise ValueError(f"kind {kind!r}: use user, room or equipment")
        user = User(user_id or str(uuid.uuid4()), upn, name or upn.split("@")[0], tenant.id, kind)
        self.users[user.id.lower()] = user
        self._user_by_upn[upn.lower()] = user
        store = CalendarStore(
            user.id, seed=self.seed + len(self.users), address=upn, display_name=user.display_name
        )
        rng = random.Random(self.seed * 7919 + len(self.users))
        mailbox = Mailbox(user, store, DeltaEngine(store, rng=rng))
        for name, value in self.delta_options.items():
            setattr(mailbox.delta, name, value)
        store.on_change(lambda change_type, event_id: self._changed(mailbox, change_type, event_id))
        self.mailboxes[user.id.lower()] = mailbox
        return user

    def add_calendar(self, user_key: str, name: str, *, can_edit: bool = True) -> Mailbox:
        """One more calendar of a mailbox (Outlook's "New calendar"); names are unique per
        mailbox, as Exchange requires (409 ErrorFolderExists otherwise)."""
        primary = self.mailbox_for(user_key)
        if not name.strip():
            raise ValueError("a calendar needs a name")
        if any(c.name.lower() == name.lower() for c in primary.all_calendars()):
            raise GraphRequestError(
                409, "ErrorFolderExists", "A folder with the specified name already exists."
            )
        user = primary.user
        n = len(primary.calendars) + 1
        store = CalendarStore(
            user.id,
            seed=self.seed * 104729 + len(self.users) * 101 + n,
            address=user.upn,
            display_name=user.display_name,
        )
        rng = random.Random(self.seed * 7919 + len(self.users) * 101 + n)
        box = Mailbox(
            user,
            store,
            DeltaEngine(store, rng=rng),
            cal_id=calendar_id(user.id, name),
            name=name,
            can_edit=can_edit,
            owner=primary,
        )
        for option, value in self.delta_options.items():
            setattr(box.delta, option, value)
        store.on_change(lambda change_type, event_id: self._changed(box, change_type, event_id))
        primary.calendars[box.cal_id] = box
        return box

    def every_calendar(self) -> list[Mailbox]:
        """Every calendar of every mailbox (knobs apply to all of their delta engines)."""
        return [c for m in self.mailboxes.values() for c in m.all_calendars()]

    def _changed(self, mailbox: Mailbox, change_type: str, event_id: str) -> None:
        for listener in self.listeners:
            listener(mailbox, change_type, event_id)

    def find_user(self, key: str) -> User | None:
        lowered = key.lower()
        return self.users.get(lowered) or self._user_by_upn.get(lowered)

    def mailbox_for(self, key: str) -> Mailbox:
        user = self.find_user(key)
        if user is None:
            raise GraphRequestError(
                404, "ErrorInvalidUser", f"The requested user '{key}' is invalid."
            )
        return self.mailboxes[user.id.lower()]
