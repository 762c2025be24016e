"""The VM runner's messages go through `logging` (logger "vm" and its
children), so a program embedding the runner (the Vagrant layer, a CI
wrapper) can route, silence or timestamp them; the command-line entry
points print them as "vm: ..." lines on stdout, as before."""
import logging
import sys

log = logging.getLogger("vm")


class _Format(logging.Formatter):
    def format(self, record):
        level = "" if record.levelno < logging.WARNING else record.levelname.lower() + ": "
        return f"vm: {level}{record.getMessage()}"


def setup(level: int = logging.INFO) -> None:
    """Print the runner's messages on stdout, once per process, unless the
    embedding program configured the "vm" logger itself."""
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_Format())
    log.addHandler(handler)
    log.setLevel(level)
