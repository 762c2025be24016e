/* The benchmark's inner loop (bench/cloop.py compiles it with cffi).
 *
 * One "container" = one child process that ends in a new mount namespace
 * whose root is the prepared rootfs, then exits (tearing the namespace
 * down). The child is clone(CLONE_VM | CLONE_VFORK): no page tables are
 * copied, so what a container costs is the method's syscalls, not fork().
 * It gets its own fs_struct (no CLONE_FS), which unshare(CLONE_NEWNS) and
 * setns(CLONE_NEWNS) require (kernel/nsproxy.c, fs/namespace.c mntns_install).
 *
 * Syscall numbers and flags (NR_*, the uapi flags) are #defined ahead of this
 * file from helpers/uapi.py: the build host's headers predate the kernels
 * under test.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long syscall(long number, ...);

#define FAIL(n) do { ctx->step = (n); ctx->err = errno; return -1; } while (0)
#define STACK_SIZE (256 * 1024)

static int floor_(struct bench_ctx *ctx)
{
	(void)ctx;
	return 0;
}

/* unshare + make the copy private + bind the rootfs + pivot_root + detach
 * the old root: the whole mount table is copied, then thrown away. */
static int classic(struct bench_ctx *ctx)
{
	if (syscall(NR_unshare, CLONE_NEWNS))
		FAIL(1);
	if (syscall(NR_mount, NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		FAIL(2);
	if (syscall(NR_mount, ctx->rootfs, ctx->rootfs, NULL, MS_BIND | MS_REC, NULL))
		FAIL(3);
	if (chdir(ctx->rootfs))
		FAIL(4);
	if (syscall(NR_pivot_root, ".", "."))
		FAIL(5);
	if (syscall(NR_umount2, ".", MNT_DETACH))
		FAIL(6);
	if (chdir("/"))
		FAIL(7);
	return 0;
}

/* open_tree(OPEN_TREE_NAMESPACE) copies the rootfs mount alone into a new
 * namespace; setns puts the caller on its root (mntns_install, LOOKUP_DOWN). */
static int open_tree_ns(struct bench_ctx *ctx)
{
	int fd = syscall(NR_open_tree, AT_FDCWD, ctx->rootfs, OPEN_TREE_NAMESPACE | OPEN_TREE_CLOEXEC);

	if (fd < 0)
		FAIL(1);
	if (syscall(NR_setns, fd, CLONE_NEWNS))
		FAIL(2);
	close(fd);
	return 0;
}

/* fsmount(FSMOUNT_NAMESPACE): a fresh tmpfs as the root of a new namespace. */
static int fsmount_ns(struct bench_ctx *ctx)
{
	int fs = syscall(NR_fsopen, "tmpfs", FSOPEN_CLOEXEC), fd;

	if (fs < 0)
		FAIL(1);
	if (syscall(NR_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0))
		FAIL(2);
	fd = syscall(NR_fsmount, fs, FSMOUNT_NAMESPACE | FSMOUNT_CLOEXEC, 0);
	if (fd < 0)
		FAIL(3);
	if (syscall(NR_setns, fd, CLONE_NEWNS))
		FAIL(4);
	close(fd);
	close(fs);
	return 0;
}

/* A detached copy of the rootfs, an empty namespace, the copy mounted on its
 * nullfs root, root and cwd moved onto it. */
static int empty_mntns(struct bench_ctx *ctx)
{
	int fd = syscall(NR_open_tree, AT_FDCWD, ctx->rootfs, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);

	if (fd < 0)
		FAIL(1);
	if (syscall(NR_unshare, UNSHARE_EMPTY_MNTNS))
		FAIL(2);
	if (syscall(NR_move_mount, fd, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH))
		FAIL(3);
	if (fchdir(fd))
		FAIL(4);
	if (chroot("."))
		FAIL(5);
	close(fd);
	return 0;
}

static int (*const methods[])(struct bench_ctx *) = {
	floor_, classic, open_tree_ns, fsmount_ns, empty_mntns,
};

int bench_one(int method, struct bench_ctx *ctx)
{
	ctx->step = ctx->err = 0;
	if (method < 0 || method >= (int)(sizeof(methods) / sizeof(methods[0]))) {
		ctx->step = -3;
		ctx->err = EINVAL;
		return -1;
	}
	return methods[method](ctx);
}

struct job {
	int method;
	struct bench_ctx *ctx;
};

static int child(void *arg)
{
	struct job *j = arg;

	_exit(bench_one(j->method, j->ctx) ? 1 : 0);
}

/* Up to n containers one after the other, stopping after max_ns (0: no
 * limit); ctx->done says how many. Returns the elapsed CLOCK_MONOTONIC ns,
 * or -1 with ctx->step/err: step -1 clone failed, -2 the child died
 * otherwise, > 0 the method's failing step (written by the child: it shares
 * our memory). */
long long bench_loop(int method, long n, long long max_ns, struct bench_ctx *ctx)
{
	struct job j = { method, ctx };
	struct timespec a, b;
	long long ret = -1;
	char *stack = mmap(NULL, STACK_SIZE, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

	ctx->step = ctx->err = 0;
	ctx->done = 0;
	if (stack == MAP_FAILED) {
		ctx->step = -1;
		ctx->err = errno;
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++) {
		int status;

		if (max_ns && i) {
			clock_gettime(CLOCK_MONOTONIC, &b);
			if ((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec) > max_ns)
				break;
		}
		pid_t pid = clone(child, stack + STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, &j);

		if (pid < 0) {
			ctx->step = -1;
			ctx->err = errno;
			goto out;
		}
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status)) {
			if (!ctx->step) {
				ctx->step = -2;
				ctx->err = status;
			}
			goto out;
		}
		ctx->done++;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	ret = (b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec);
out:
	munmap(stack, STACK_SIZE);
	return ret;
}
