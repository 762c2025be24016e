"""python -m bench.count METHOD ROOTFS N: N containers of METHOD in the C
loop, untimed. bench/syscalls.py runs it to count syscalls: it prints
"ready" once started and waits for a line on stdin, so strace attaches after
the Python start-up, not before. Runs in the mount namespace it is started
in: the benchmark's private one."""
import sys

from bench import cloop
from bench.measure import make_ctx
from bench.methods import BY_NAME, step_name


def main(argv):
    method, rootfs, n = BY_NAME[argv[0]], argv[1], int(argv[2])
    loop = cloop.load()
    ctx, _keep = make_ctx(loop, rootfs)
    print("ready", flush=True)
    sys.stdin.readline()
    if loop.lib.bench_loop(method.index, n, 0, ctx) < 0:
        sys.exit(f"bench.count: {method.name}: {step_name(method, ctx.step, ctx.err)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
