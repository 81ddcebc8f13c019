"""The one exit-code table of the ``likeness`` command, every sub-command alike (README, "Exit codes")."""

EXIT_OK = 0  # done
EXIT_FAILED = 1  # a job failed on the server
EXIT_USAGE = 2  # bad arguments or input files (the message names the value and the fix)
EXIT_UNAVAILABLE = 3  # something the command needs is unavailable: the server, a model file, the package that runs it
EXIT_REJECTED = 4  # the workflow did not validate (/prompt answered 400)
EXIT_GATE = 5  # the likeness gate was not reached in --max-tries (the best try is kept)
