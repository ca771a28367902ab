"""A local host for the app's own declared triggers (dev and tests only; never deployed).

Azure Functions Core Tools is not needed: `python -m shared.devhost` reads the functions that
`function_app.app` declares and serves HTTP triggers under /api/<route> with their methods and
auth levels, fires timer triggers on their NCRONTAB schedules and runs Storage queue triggers
with the host's retry and poison-queue rules, against an Azurite it starts itself. Where Core
Tools is installed, `func start` runs the same files. Nothing here is imported by the app.
"""

from shared.devhost.azurite import run_azurite
from shared.devhost.host import DevHost
from shared.devhost.hostconfig import HostOptions, QueueOptions

__all__ = ["DevHost", "HostOptions", "QueueOptions", "run_azurite"]
