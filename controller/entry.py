"""The `cushion` console script: a signal while the program is still loading exits 130.

Nothing is on the wire yet while the command line loads, so the only duty is a clean exit;
once a run starts, its own handlers (`controller.runner`) cut the outputs first.
"""

from __future__ import annotations

import signal
import sys

# No `typing` import here: it is the slowest import before the handlers below, and a signal
# in that window died with the interpreter's traceback (the kill loops, on a loaded host).

EXIT_INTERRUPTED = 130
_EARLY = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _exit_interrupted() -> None:
    sys.stderr.write("interrupted\n")
    sys.exit(EXIT_INTERRUPTED)


def main() -> None:
    """Load the command line and run it; an early Ctrl-C or kill exits 130, no traceback."""
    try:
        for sig in _EARLY:
            # Left alone when ignored on purpose (nohup, a background job).
            if signal.getsignal(sig) is signal.SIG_DFL:
                signal.signal(sig, _interrupted)
        from controller.cli import main as cli
    except KeyboardInterrupt:
        _exit_interrupted()
    import click

    # Not click's standalone mode: it turns a Ctrl-C that lands outside a command's own
    # handling (while the arguments are parsed, say) into "Aborted!" and exit 1.
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            _exit_interrupted()
        sys.stderr.write("aborted\n")
        sys.exit(1)
    except KeyboardInterrupt:
        _exit_interrupted()
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
