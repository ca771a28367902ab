"""`python -m graphsim --port 0 --state-dir DIR [--seed-demo] [--seed N]`: run the simulator
(see graphsim/runtime/process.py and README.md)."""

from graphsim.runtime.process import main

if __name__ == "__main__":
    main()
