"""Who is calling: Basic on every request, or NTLM once per TCP connection, as IIS does.

Rule: NTLM is a three-leg handshake bound to one connection (negotiate -> 401 with the
challenge -> authenticate); once it succeeds, later requests on that connection need no header.
The NTLM acceptor is pyspnego's, reading the accounts from the file named by NTLM_USER_FILE
(`DOMAIN:user:password` lines), which `Accounts.write` keeps in step with the model. A wrong
password is 401, with no hint which part was wrong.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from pathlib import Path
from typing import Any

import spnego
import spnego.exceptions

from ewssim.model import ServiceAccount, World

CHALLENGES = ("Negotiate", "NTLM", 'Basic realm="ewssim"')


class Unauthorized(Exception):
    """401: `challenge` is the WWW-Authenticate value(s) to send (None: the usual offer)."""

    def __init__(self, challenge: tuple[str, ...] = CHALLENGES) -> None:
        super().__init__("401 Unauthorized")
        self.challenge = challenge


class Authenticator:
    def __init__(self, world: World, user_file: Path) -> None:
        self._world = world
        self._user_file = user_file
        self._lock = threading.Lock()
        self._pending: dict[Any, Any] = {}  # connection -> spnego context mid-handshake
        self._done: dict[Any, ServiceAccount] = {}  # connection -> authenticated account
        self.handshakes = 0  # NTLM handshakes completed (one per connection when all is well)
        os.environ["NTLM_USER_FILE"] = str(user_file)
        self.write_users()

    def write_users(self) -> None:
        lines = []
        with self._world.lock:
            for account in self._world.accounts.values():
                domain, _, user = account.username.rpartition("\\")
                lines.append(f"{domain}:{user}:{account.password}")
        self._user_file.write_text("\n".join(lines) + "\n")

    def forget(self, connection: Any) -> None:
        with self._lock:
            self._pending.pop(connection, None)
            self._done.pop(connection, None)

    def authenticate(self, connection: Any, header: str) -> ServiceAccount:
        """The account of this request, or Unauthorized (with the next NTLM leg when there is
        one)."""
        with self._lock:
            known = self._done.get(connection)
        scheme, _, value = header.partition(" ")
        if not header and known is not None:
            return known
        if scheme.lower() == "basic":
            return self._basic(value.strip())
        if scheme.lower() in ("ntlm", "negotiate"):
            return self._ntlm(connection, scheme, value.strip())
        raise Unauthorized()

    def _basic(self, value: str) -> ServiceAccount:
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized() from None
        account = self._world.find_account(user)
        if account is None or account.password != password:
            raise Unauthorized()
        return account

    def _ntlm(self, connection: Any, scheme: str, value: str) -> ServiceAccount:
        try:
            token = base64.b64decode(value, validate=True)
        except binascii.Error:
            raise Unauthorized() from None
        with self._lock:
            ctx = self._pending.pop(connection, None)
        try:
            if ctx is None:
                ctx = spnego.server(protocol="ntlm")
            out = ctx.step(token)
        except spnego.exceptions.SpnegoError:
            raise Unauthorized() from None
        if not ctx.complete:
            with self._lock:
                self._pending[connection] = ctx
            raise Unauthorized((f"{scheme} {base64.b64encode(out or b'').decode()}",))
        account = self._world.find_account(ctx.client_principal or "")
        if account is None:
            raise Unauthorized()
        with self._lock:
            self._done[connection] = account
            self.handshakes += 1
        return account
