"""`python -m ewssim --port 0 --state-dir DIR`: run the EWS simulator (see ewssim/process.py)."""

from ewssim.process import main

if __name__ == "__main__":
    main()
