"""Exit codes of the VM runner, for CI systems and `git bisect run`.

    0    every kernel ran and every test was as expected
    1    a test FAILed or ERRORed on some kernel (the kernel ran fine)
    6    a kernel crashed or hung (panic, oops, BUG, WARN, guest hang, no init):
         still a verdict on that kernel, so bisect marks it bad
    4    usage error: bad option, unknown kernel, not root, a path the guest
         cannot see (pytest's own ExitCode.USAGE_ERROR)
    125  infrastructure failure: qemu, virtiofsd, busybox, apt or the network
         could not be used, so nothing could be tested ("skip" to git bisect)
    130  interrupted (Ctrl-C): partial summary written; aborts git bisect
"""
OK = 0
TESTS_FAILED = 1
USAGE = 4
KERNEL_CRASHED = 6
INFRA = 125
INTERRUPTED = 130


class RunnerError(Exception):
    """A one-line message for the user and the exit code that goes with it."""
    exit_code = INFRA


class UsageError(RunnerError):
    exit_code = USAGE


class InfraError(RunnerError):
    exit_code = INFRA
