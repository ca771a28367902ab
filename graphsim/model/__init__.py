"""The simulated cloud's state, as plain classes: the directory (tenants, apps, users and their
mailboxes), each mailbox's calendar (`graphsim.model.calendar`), subscriptions and the vault.

Rule: nothing here does I/O, imports starlette, or knows the API or runtime parts; whatever a
model needs from outside (the virtual now, where notifications go) comes in as constructor
arguments or callables, so every model can be built and driven alone in a test.
"""
