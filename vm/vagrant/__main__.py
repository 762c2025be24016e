"""python -m vm.vagrant setup | stop  (what vagrant/setup and vagrant/stop run)."""
import sys

from .. import errors
from . import config, netns, setup

USAGE = "usage: python -m vm.vagrant setup|stop"


def main(argv: list[str]) -> int:
    try:
        if argv == ["setup"]:
            return setup.run()
        if argv == ["stop"]:
            return netns.down(config.NETNS, lambda m: print(f"vagrant/stop: {m}", flush=True))
    except errors.RunnerError as e:
        print(f"vagrant/{argv[0]}: {e}", file=sys.stderr)
        return e.exit_code
    print(USAGE, file=sys.stderr)
    return errors.USAGE


sys.exit(main(sys.argv[1:]))
