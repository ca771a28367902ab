"""`Simulator`, the simulated cloud: the one place that builds the parts and wires them.

Rule: the model (directory, subscriptions, vault) and the runtime (clock, signer, throttle,
faults, delivery) are built here and connected by plain callables: calendar changes reach the
subscriptions through a directory listener, subscriptions hand notifications to the delivery's
`enqueue`, the delivery reports lost items back through `on_lost`. No part keeps a reference
to this object; only the API handlers get it (on `request.app.state.sim`, or in `Ctx`). No
module keeps global state, so one process could host several simulators.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from graphsim.api.calls import GraphResult
from graphsim.counters import Counters
from graphsim.knobs import Knobs
from graphsim.model.directory import Directory
from graphsim.model.subscriptions import Subscriptions
from graphsim.model.vault import Vault
from graphsim.runtime.clock import VirtualClock
from graphsim.runtime.delivery import Delivery
from graphsim.runtime.throttle import Faults, Throttle
from graphsim.runtime.tokens import TokenSigner


@dataclass(frozen=True)
class Urls:
    origin: str  # https://127.0.0.1:PORT

    @property
    def authority_host(self) -> str:
        return self.origin

    @property
    def graph_base_url(self) -> str:
        return f"{self.origin}/v1.0"

    @property
    def graph_resource(self) -> str:
        # The token audience for Graph is the scheme+host of the Graph base URL, as
        # https://graph.microsoft.com is for https://graph.microsoft.com/v1.0.
        return self.origin

    @property
    def key_vault_url(self) -> str:
        return self.origin

    @property
    def key_vault_resource(self) -> str:
        # azure-keyvault-secrets accepts a challenge resource only when the vault's host is a
        # subdomain of it (myvault.vault.azure.net of vault.azure.net). Here the vault host is
        # 127.0.0.1:PORT, which ends with ".0.0.1:PORT": so the resource is https://0.0.1:PORT,
        # and SecretClient's default verify_challenge_resource=True keeps working.
        host, _, port = self.origin.removeprefix("https://").partition(":")
        parent = host.split(".", 1)[1] if "." in host else host
        return f"https://{parent}:{port}" if port else f"https://{parent}"

    @property
    def control_url(self) -> str:
        return f"{self.origin}/_sim"


class Simulator:
    def __init__(self, origin: str, *, ca_pem_path: Path, seed: int = 0) -> None:
        self.urls = Urls(origin)
        self.ca_pem_path = ca_pem_path
        self.clock = VirtualClock()
        self.knobs = Knobs(seed=seed)
        self.rng = random.Random(seed)
        self.counters = Counters()
        self.response_cache: dict[tuple[str, int, str, str, str], GraphResult] = {}
        self.directory = Directory(seed=seed)
        self.signer = TokenSigner()
        self.throttle = Throttle(self.clock, self.knobs)
        self.faults = Faults(self.knobs, self.rng)
        self.vault = Vault()
        self.delivery = Delivery(self.clock, self.knobs, self.counters, ca_pem_path, self.rng)
        self.subscriptions = Subscriptions(
            now=self.clock.now, knobs=self.knobs, counters=self.counters, send=self.delivery.enqueue
        )
        self.delivery.on_lost = self.subscriptions.missed
        self.directory.listeners.append(self.subscriptions.on_change)

    def reseed(self, seed: int) -> None:
        self.rng.seed(seed)
