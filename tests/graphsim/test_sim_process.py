"""The simulator as a process: ready line, demo seed, control API refusals, stopping."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from graphsim.client import ControlError
from graphsim.demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, DEMO_USERS
from graphsim.testing import SimHandle, run_simulator, token_for

pytestmark = pytest.mark.integration


def test_ready_line_demo_seed_and_clean_stop() -> None:
    """`python -m graphsim --seed-demo` prints its URLs and files, serves the demo tenant, and
    stops on SIGTERM leaving neither a process nor its state directory behind."""
    with run_simulator(seed_demo=True) as sim:
        assert sim.graph_base_url == sim.authority_host + "/v1.0"
        assert sim.control_url == sim.authority_host + "/_sim"
        for path in (sim.ca_pem_path, sim.host_cert_path, sim.host_key_path):
            assert Path(path).read_text().startswith("-----BEGIN")
        token = token_for(sim, DEMO_TENANT_ID, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
        events = httpx.get(
            f"{sim.graph_base_url}/users/{DEMO_USERS[0]}/events",
            headers={"Authorization": f"Bearer {token}"},
            verify=sim.ssl_context(),
        )
        assert events.status_code == 200
        assert {e["subject"] for e in events.json()["value"]} == {"Customer call", "Team stand-up"}
        process, state_dir = sim.process, sim.state_dir
    assert process.poll() is not None
    assert not state_dir.exists()


def test_unknown_knob_is_refused(sim: SimHandle) -> None:
    """POST /_sim/knobs with an unknown name or a wrong type is a 400 naming the problem."""
    with pytest.raises(ControlError, match="unknown knob 'nope'"):
        sim.control.knobs(nope=1)
    with pytest.raises(ControlError, match="takes an integer"):
        sim.control.knobs(concurrent_per_mailbox="four")


def test_clock_only_moves_forward(sim: SimHandle) -> None:
    """The virtual clock advances on command and refuses to go back."""
    before = sim.control.now()
    after = sim.control.advance(10)
    assert after > before
    with pytest.raises(ControlError, match="only moves forward"):
        sim.control.advance(-1)


def test_unknown_route_is_404(sim: SimHandle) -> None:
    """Paths outside Entra, Graph, the vault and /_sim answer 404."""
    response = httpx.get(f"{sim.authority_host}/nothing/here/at/all", verify=sim.ssl_context())
    assert response.status_code == 404
