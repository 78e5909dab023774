"""Pure tests: no servers, no subprocesses, no sleeps; `make quick` runs this folder in seconds."""
