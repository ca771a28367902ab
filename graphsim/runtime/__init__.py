"""What makes the model run as a server: the virtual clock, TLS material, the token signer,
throttling and faults, asynchronous notification delivery, the ASGI app and the process entry.

Rule: runtime parts take what they need (clock, knobs, counters) as constructor arguments and
keep no reference to the whole simulator.
"""
