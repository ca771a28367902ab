"""A local host for the app's own declared triggers (dev and tests only; never deployed).

Azure Functions Core Tools is not needed: `python -m devhost` reads the functions that
`function_app.app` declares and serves HTTP triggers under /api/<route> with their methods and
auth levels, fires timer triggers on their NCRONTAB schedules and runs Storage queue triggers
with the host's retry and poison-queue rules, against an Azurite it starts itself. Where Core
Tools is installed, `func start` runs the same files. Nothing here is imported by the app, and
nothing here but `devhost.local` (the whole local system: simulator, stack, demo) knows `graphsim`.
"""

from devhost.azurite import run_azurite
from devhost.host import DevHost
from devhost.hostconfig import HostOptions, QueueOptions

__all__ = ["DevHost", "HostOptions", "QueueOptions", "run_azurite"]
