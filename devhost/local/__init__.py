"""The whole system on one machine: Azurite, the Graph/Entra/Key Vault simulator and dev hosts.

Rule: this is the only part of `devhost` that knows the simulator (`graphsim`); the Functions-host
emulator in `devhost` itself serves any FunctionApp and needs only Azurite. `stack` starts and
stops the system (the end-to-end tests and the benchmarks use it); `demo` is `scripts/run`.
"""
