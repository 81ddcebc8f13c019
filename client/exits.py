"""The one exit-code table of the ``likeness`` command, every sub-command alike (README, "Exit codes")."""

EXIT_OK = 0  # done
EXIT_FAILED = 1  # a job failed on the server
EXIT_USAGE = 2  # bad arguments or input files (the message names the value and the fix)
EXIT_UNAVAILABLE = 3  # unavailable: the server (or not ComfyUI, or without this pack); for eval/dataset a model or its package
EXIT_REJECTED = 4  # the workflow did not validate, or a model file it loads is missing (checked before queueing)
EXIT_GATE = 5  # the likeness gate was not reached in --max-tries (the best try is kept)
