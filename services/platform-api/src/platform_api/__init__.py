"""platform-api: the lens and workflow catalogue (event-sourced); runs, run events and partners next."""
