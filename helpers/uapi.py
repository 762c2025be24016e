"""UAPI constants, syscall numbers and struct layouts, defined here rather than
taken from the build host's headers: those are older (bookworm ships 6.1) than
the kernels under test. Values follow the 7.3 uapi headers (include/uapi/linux/mount.h, sched.h,
nsfs.h, fanotify.h; arch/x86/entry/syscalls/syscall_64.tbl).
"""
import platform

# --- syscall numbers -------------------------------------------------------
# Syscalls numbered 424 and up are identical on every architecture; the older
# ones differ, so the table is per machine. Add an architecture by adding a dict.
_COMMON = {
    "pidfd_open": 434, "clone3": 435, "pidfd_getfd": 438, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442, "statmount": 457, "listmount": 458,
    "open_tree_attr": 467, "listns": 470,
}
SYSCALLS = {
    "x86_64": {
        **_COMMON, "pivot_root": 155, "chroot": 161, "mount": 165,
        "umount2": 166, "unshare": 272, "setns": 308, "statx": 332,
        "capget": 125, "capset": 126, "fanotify_init": 300,
        "fanotify_mark": 301, "name_to_handle_at": 303,
        "open_by_handle_at": 304, "userfaultfd": 323, "getdents64": 217,
        "add_key": 248, "keyctl": 250,
    },
    "aarch64": {  # asm-generic numbering
        **_COMMON, "pivot_root": 41, "chroot": 51, "mount": 40,
        "umount2": 39, "unshare": 97, "setns": 268, "statx": 291,
        "capget": 90, "capset": 91, "fanotify_init": 262,
        "fanotify_mark": 263, "name_to_handle_at": 264,
        "open_by_handle_at": 265, "userfaultfd": 282, "getdents64": 61,
        "add_key": 217, "keyctl": 219,
    },
}
NR = SYSCALLS[platform.machine()]

# --- open_tree / move_mount / fsopen / fspick / fsconfig / fsmount -----------
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_NO_AUTOMOUNT = 0x800
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000

OPEN_TREE_CLONE = 0x1
OPEN_TREE_NAMESPACE = 0x2
OPEN_TREE_CLOEXEC = 0x80000

MOVE_MOUNT_F_SYMLINKS = 0x1
MOVE_MOUNT_F_AUTOMOUNTS = 0x2
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_SYMLINKS = 0x10
MOVE_MOUNT_T_AUTOMOUNTS = 0x20
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOVE_MOUNT_SET_GROUP = 0x100
MOVE_MOUNT_BENEATH = 0x200
MOVE_MOUNT__MASK = 0x377

FSOPEN_CLOEXEC = 0x1
FSPICK_CLOEXEC = 0x1
FSPICK_SYMLINK_NOFOLLOW = 0x2
FSPICK_NO_AUTOMOUNT = 0x4
FSPICK_EMPTY_PATH = 0x8

FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_SET_BINARY = 2
FSCONFIG_SET_PATH = 3
FSCONFIG_SET_PATH_EMPTY = 4
FSCONFIG_SET_FD = 5
FSCONFIG_CMD_CREATE = 6
FSCONFIG_CMD_RECONFIGURE = 7
FSCONFIG_CMD_CREATE_EXCL = 8

FSMOUNT_CLOEXEC = 0x1
FSMOUNT_NAMESPACE = 0x2

# --- MOUNT_ATTR_* -----------------------------------------------------------
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
MOUNT_ATTR_SIZE_VER0 = 32

# --- mount(2), umount2, statvfs ------------------------------------------------
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_UNBINDABLE = 0x20000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_SHARED = 0x100000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000

MNT_FORCE = 1
MNT_DETACH = 2
MNT_EXPIRE = 4
UMOUNT_NOFOLLOW = 8

ST_RDONLY = 1
ST_NOSUID = 2
ST_NODEV = 4
ST_NOEXEC = 8
ST_NOATIME = 1024
ST_NODIRATIME = 2048
ST_RELATIME = 4096
ST_NOSYMFOLLOW = 0x2000
ST_SYNCHRONOUS = 16
ST_MANDLOCK = 64

# --- clone / unshare ------------------------------------------------------------
CLONE_NEWTIME = 0x80
CLONE_VM = 0x100
CLONE_FS = 0x200
CLONE_FILES = 0x400
CLONE_PIDFD = 0x1000
CLONE_VFORK = 0x4000
CLONE_NEWNS = 0x20000
CLONE_PARENT_SETTID = 0x100000
CLONE_NEWCGROUP = 0x2000000
CLONE_NEWUTS = 0x4000000
CLONE_NEWIPC = 0x8000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
CLONE_CLEAR_SIGHAND = 1 << 32
CLONE_INTO_CGROUP = 1 << 33
CLONE_AUTOREAP = 1 << 34
CLONE_NNP = 1 << 35
CLONE_PIDFD_AUTOKILL = 1 << 36
CLONE_EMPTY_MNTNS = 1 << 37
UNSHARE_EMPTY_MNTNS = 0x00100000  # unshare(2) only; same bit as CLONE_PARENT_SETTID
CLONE_ARGS_SIZE_VER0 = 64
CLONE_ARGS_SIZE_VER1 = 80
CLONE_ARGS_SIZE_VER2 = 88

# --- statx --------------------------------------------------------------------
STATX_MNT_ID = 0x1000
STATX_MNT_ID_UNIQUE = 0x4000
STATX_ATTR_MOUNT_ROOT = 0x2000

# --- statmount / listmount ------------------------------------------------------
STATMOUNT_SB_BASIC = 0x1
STATMOUNT_MNT_BASIC = 0x2
STATMOUNT_PROPAGATE_FROM = 0x4
STATMOUNT_MNT_ROOT = 0x8
STATMOUNT_MNT_POINT = 0x10
STATMOUNT_FS_TYPE = 0x20
STATMOUNT_MNT_NS_ID = 0x40
STATMOUNT_MNT_OPTS = 0x80
STATMOUNT_FS_SUBTYPE = 0x100
STATMOUNT_SB_SOURCE = 0x200
STATMOUNT_OPT_ARRAY = 0x400
STATMOUNT_OPT_SEC_ARRAY = 0x800
STATMOUNT_SUPPORTED_MASK = 0x1000
STATMOUNT_MNT_UIDMAP = 0x2000
STATMOUNT_MNT_GIDMAP = 0x4000
STATMOUNT_BY_FD = 0x1
LSMT_ROOT = 0xFFFFFFFFFFFFFFFF
LISTMOUNT_REVERSE = 0x1
MNT_ID_REQ_SIZE_VER0 = 24
MNT_ID_REQ_SIZE_VER1 = 32
MNT_UNIQUE_ID_OFFSET = 0x80000000
STATMOUNT_FIXED_SIZE = 512

# --- nsfs ioctls ------------------------------------------------------------------
NS_GET_USERNS = 0xB701
NS_GET_PARENT = 0xB702
NS_GET_NSTYPE = 0xB703
NS_GET_OWNER_UID = 0xB704
NS_GET_MNTNS_ID = 0x8008B705
NS_GET_PID_FROM_PIDNS = 0x8004B706
NS_GET_TGID_FROM_PIDNS = 0x8004B707
NS_GET_PID_IN_PIDNS = 0x8004B708
NS_GET_TGID_IN_PIDNS = 0x8004B709
NS_MNT_GET_INFO = 0x8010B70A
NS_MNT_GET_NEXT = 0x8010B70B
NS_MNT_GET_PREV = 0x8010B70C
NS_GET_ID = 0x8008B70D
MNT_NS_INFO_SIZE_VER0 = 16
MNT_NS_INIT_ID = 8

# Every namespace type's CLONE_NEW* bit (enum ns_type) by its /proc/<pid>/ns name.
NS_TYPES = {
    "time": CLONE_NEWTIME, "mnt": CLONE_NEWNS, "cgroup": CLONE_NEWCGROUP, "uts": CLONE_NEWUTS,
    "ipc": CLONE_NEWIPC, "user": CLONE_NEWUSER, "pid": CLONE_NEWPID, "net": CLONE_NEWNET,
}
# enum init_ns_ino and enum init_ns_id (uapi since 6.18; ipc, uts, user, pid,
# cgroup and time had these inode numbers long before, in linux/proc_ns.h).
INIT_NS_INO = {"ipc": 0xEFFFFFFF, "uts": 0xEFFFFFFE, "user": 0xEFFFFFFD, "pid": 0xEFFFFFFC,
               "cgroup": 0xEFFFFFFB, "time": 0xEFFFFFFA, "net": 0xEFFFFFF9, "mnt": 0xEFFFFFF8}
INIT_NS_ID = {"ipc": 1, "uts": 2, "user": 3, "pid": 4, "cgroup": 5, "time": 6, "net": 7, "mnt": 8}
# listns(2) (6.19): struct ns_id_req's first size, "the caller's user namespace".
NS_ID_REQ_SIZE_VER0 = 32
LISTNS_CURRENT_USER = 0xFFFFFFFFFFFFFFFF
# nsfs file handles (6.18): include/linux/exportfs.h, struct nsfs_file_handle.
FILEID_NSFS = 0xF1
FD_NSFS_ROOT = -10003  # open_by_handle_at(): the nsfs root (include/uapi/linux/fcntl.h)
NSFS_FILE_HANDLE_SIZE_VER0 = 16
# A socket's network namespace (include/uapi/linux/sockios.h).
SIOCGSKNS = 0x894C

# --- fanotify -------------------------------------------------------------------
FAN_CLOEXEC = 0x1
FAN_NONBLOCK = 0x2
FAN_CLASS_NOTIF = 0x0
FAN_CLASS_CONTENT = 0x4
FAN_REPORT_FID = 0x200
FAN_REPORT_MNT = 0x4000
FAN_MARK_ADD = 0x1
FAN_MARK_REMOVE = 0x2
FAN_MARK_FLUSH = 0x80
FAN_MARK_INODE = 0x0
FAN_MARK_MOUNT = 0x10
FAN_MARK_FILESYSTEM = 0x100
FAN_MARK_MNTNS = 0x110
FAN_OPEN = 0x20
FAN_MNT_ATTACH = 0x01000000
FAN_MNT_DETACH = 0x02000000
FAN_EVENT_INFO_TYPE_MNT = 7
FANOTIFY_METADATA_VERSION = 3

# --- inotify, fcntl ------------------------------------------------------------
IN_OPEN = 0x20
F_OFD_GETLK = 36
F_OFD_SETLK = 37

# --- userfaultfd (linux/userfaultfd.h) -----------------------------------------------
UFFD_API = 0xAA
UFFD_USER_MODE_ONLY = 1
UFFDIO_API = 0xC018AA3F           # _IOWR(0xAA, 0x3F, struct uffdio_api)       (24 bytes)
UFFDIO_REGISTER = 0xC020AA00      # _IOWR(0xAA, 0x00, struct uffdio_register)  (32 bytes)
UFFDIO_ZEROPAGE = 0xC020AA04      # _IOWR(0xAA, 0x04, struct uffdio_zeropage)  (32 bytes)
UFFDIO_REGISTER_MODE_MISSING = 1
UFFD_EVENT_PAGEFAULT = 0x12
UFFD_MSG_SIZE = 32                # sizeof(struct uffd_msg)

# --- keys (linux/keyctl.h) ------------------------------------------------------------
KEYCTL_GET_KEYRING_ID = 0
KEY_SPEC_SESSION_KEYRING = -3
KEY_SPEC_USER_KEYRING = -4

# --- magic numbers, misc ioctls ---------------------------------------------------
NULL_FS_MAGIC = 0x4E554C4C
TMPFS_MAGIC = 0x01021994
NSFS_MAGIC = 0x6E736673
RAMFS_MAGIC = 0x858458F6
PROC_SUPER_MAGIC = 0x9FA0
SYSFS_MAGIC = 0x62656572
OVERLAYFS_SUPER_MAGIC = 0x794C7630
DEBUGFS_MAGIC = 0x64626720
TRACEFS_MAGIC = 0x74726163
MINIX_SUPER_MAGIC = 0x137F
AUTOFS_DEV_IOCTL_OPENMOUNT = 0xC0189374
AUTOFS_DEV_IOCTL_CLOSEMOUNT = 0xC0189375
AUTOFS_DEV_IOCTL_READY = 0xC0189376
LOOP_SET_FD = 0x4C00
LOOP_CLR_FD = 0x4C01
LOOP_CTL_GET_FREE = 0x4C82
MAX_HANDLE_SZ = 128
FUSE_DEV_IOC_BACKING_OPEN = 0x4010E501
# md (linux/raid/md_u.h)
MD_SET_ARRAY_INFO = 0x40480923
MD_ADD_NEW_DISK = 0x40140921
MD_SET_BITMAP_FILE = 0x4004092B
MD_RUN_ARRAY = 0x400C0930
MD_STOP_ARRAY = 0x932

# nsfs inode numbers of the initial namespaces (include/linux/proc_ns.h)
PROC_USER_INIT_INO = 0xEFFFFFFD
PROC_PID_INIT_INO = 0xEFFFFFFC
# the nsfs inode number all anonymous mount namespaces share (include/uapi/linux/nsfs.h,
# under __KERNEL__; given by fs/namespace.c alloc_mnt_ns(user_ns, anon=true))
MNT_NS_ANON_INO = 0xEFFFFFF7

# Capability numbers (linux/capability.h) and the v3 capset header.
CAP_SYS_CHROOT = 18
CAP_SYS_PTRACE = 19
CAP_SYS_ADMIN = 21
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

# --- struct layouts (cffi cdef) ---------------------------------------------------
CDEF = """
long syscall(long number, ...);
int ioctl(int fd, unsigned long request, ...);

struct mount_attr {
    uint64_t attr_set;
    uint64_t attr_clr;
    uint64_t propagation;
    uint64_t userns_fd;
};

struct mnt_id_req {
    uint32_t size;
    union { uint32_t mnt_ns_fd; uint32_t mnt_fd; };
    uint64_t mnt_id;
    uint64_t param;
    uint64_t mnt_ns_id;
};

struct statmount {
    uint32_t size;
    uint32_t mnt_opts;
    uint64_t mask;
    uint32_t sb_dev_major;
    uint32_t sb_dev_minor;
    uint64_t sb_magic;
    uint32_t sb_flags;
    uint32_t fs_type;
    uint64_t mnt_id;
    uint64_t mnt_parent_id;
    uint32_t mnt_id_old;
    uint32_t mnt_parent_id_old;
    uint64_t mnt_attr;
    uint64_t mnt_propagation;
    uint64_t mnt_peer_group;
    uint64_t mnt_master;
    uint64_t propagate_from;
    uint32_t mnt_root;
    uint32_t mnt_point;
    uint64_t mnt_ns_id;
    uint32_t fs_subtype;
    uint32_t sb_source;
    uint32_t opt_num;
    uint32_t opt_array;
    uint32_t opt_sec_num;
    uint32_t opt_sec_array;
    uint64_t supported_mask;
    uint32_t mnt_uidmap_num;
    uint32_t mnt_uidmap;
    uint32_t mnt_gidmap_num;
    uint32_t mnt_gidmap;
    uint64_t __spare2[43];
    char str[];
};

struct clone_args {
    uint64_t flags;
    uint64_t pidfd;
    uint64_t child_tid;
    uint64_t parent_tid;
    uint64_t exit_signal;
    uint64_t stack;
    uint64_t stack_size;
    uint64_t tls;
    uint64_t set_tid;
    uint64_t set_tid_size;
    uint64_t cgroup;
};

struct ns_id_req {
    uint32_t size;
    uint32_t spare;
    uint64_t ns_id;
    uint32_t ns_type;
    uint32_t spare2;
    uint64_t user_ns_id;
};

struct nsfs_file_handle {
    uint64_t ns_id;
    uint32_t ns_type;
    uint32_t ns_inum;
};

struct mnt_ns_info {
    uint32_t size;
    uint32_t nr_mounts;
    uint64_t mnt_ns_id;
};

struct statx_timestamp { int64_t tv_sec; uint32_t tv_nsec; int32_t __reserved; };
struct statx {
    uint32_t stx_mask;
    uint32_t stx_blksize;
    uint64_t stx_attributes;
    uint32_t stx_nlink;
    uint32_t stx_uid;
    uint32_t stx_gid;
    uint16_t stx_mode;
    uint16_t __spare0[1];
    uint64_t stx_ino;
    uint64_t stx_size;
    uint64_t stx_blocks;
    uint64_t stx_attributes_mask;
    struct statx_timestamp stx_atime;
    struct statx_timestamp stx_btime;
    struct statx_timestamp stx_ctime;
    struct statx_timestamp stx_mtime;
    uint32_t stx_rdev_major;
    uint32_t stx_rdev_minor;
    uint32_t stx_dev_major;
    uint32_t stx_dev_minor;
    uint64_t stx_mnt_id;
    uint64_t __spare2[13];
};

struct fanotify_event_metadata {
    uint32_t event_len;
    uint8_t vers;
    uint8_t reserved;
    uint16_t metadata_len;
    uint64_t mask;
    int32_t fd;
    int32_t pid;
};

struct fanotify_event_info_header { uint8_t info_type; uint8_t pad; uint16_t len; };
struct fanotify_event_info_mnt {
    struct fanotify_event_info_header hdr;
    uint64_t mnt_id;
};

struct file_handle {
    uint32_t handle_bytes;
    int handle_type;
    unsigned char f_handle[128];
};

struct statfs {
    long f_type;
    long f_bsize;
    unsigned long f_blocks;
    unsigned long f_bfree;
    unsigned long f_bavail;
    unsigned long f_files;
    unsigned long f_ffree;
    int f_fsid[2];
    long f_namelen;
    long f_frsize;
    long f_flags;
    long f_spare[4];
};

/* libc by symbol (same on every architecture; glibc's faccessat handles flags) */
int statfs(const char *path, struct statfs *buf);
int fstatfs(int fd, struct statfs *buf);
int faccessat(int dirfd, const char *path, int mode, int flags);
int inotify_init1(int flags);
void *mmap(void *addr, size_t length, int prot, int flags, int fd, long offset);
int munmap(void *addr, size_t length);
int setfsuid(unsigned int fsuid);
int setfsgid(unsigned int fsgid);
int inotify_add_watch(int fd, const char *path, uint32_t mask);

struct cap_header { uint32_t version; int pid; };
struct cap_data { uint32_t effective; uint32_t permitted; uint32_t inheritable; };

"""
