"""`python -m calsync_cli`: the operator CLI, as the installed `calsync` command."""

from calsync_cli import main

main()
