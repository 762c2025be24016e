"""Struct sizes and field offsets against the 7.3 uapi (include/uapi/linux/mount.h, nsfs.h)."""
import pytest

from helpers.sys import ffi

LAYOUTS = {
    "struct mount_attr": (32, {"attr_set": 0, "attr_clr": 8, "propagation": 16, "userns_fd": 24}),
    "struct mnt_id_req": (32, {"size": 0, "mnt_ns_fd": 4, "mnt_fd": 4, "mnt_id": 8, "param": 16,
                               "mnt_ns_id": 24}),
    "struct clone_args": (88, {"flags": 0, "pidfd": 8, "child_tid": 16, "parent_tid": 24,
                               "exit_signal": 32, "stack": 40, "stack_size": 48, "tls": 56,
                               "set_tid": 64, "set_tid_size": 72, "cgroup": 80}),
    "struct statmount": (512, {
        "size": 0, "mnt_opts": 4, "mask": 8, "sb_dev_major": 16, "sb_dev_minor": 20,
        "sb_magic": 24, "sb_flags": 32, "fs_type": 36, "mnt_id": 40, "mnt_parent_id": 48,
        "mnt_id_old": 56, "mnt_parent_id_old": 60, "mnt_attr": 64, "mnt_propagation": 72,
        "mnt_peer_group": 80, "mnt_master": 88, "propagate_from": 96, "mnt_root": 104,
        "mnt_point": 108, "mnt_ns_id": 112, "fs_subtype": 120, "sb_source": 124,
        "opt_num": 128, "opt_array": 132, "opt_sec_num": 136, "opt_sec_array": 140,
        "supported_mask": 144, "mnt_uidmap_num": 152, "mnt_uidmap": 156,
        "mnt_gidmap_num": 160, "mnt_gidmap": 164, "__spare2": 168, "str": 512}),
    "struct mnt_ns_info": (16, {"size": 0, "nr_mounts": 4, "mnt_ns_id": 8}),
    "struct ns_id_req": (32, {"size": 0, "spare": 4, "ns_id": 8, "ns_type": 16, "spare2": 20,
                              "user_ns_id": 24}),
    "struct nsfs_file_handle": (16, {"ns_id": 0, "ns_type": 8, "ns_inum": 12}),
    "struct statx": (256, {"stx_mask": 0, "stx_attributes": 8, "stx_uid": 20, "stx_gid": 24,
                           "stx_ino": 32, "stx_attributes_mask": 56, "stx_dev_major": 136,
                           "stx_dev_minor": 140, "stx_mnt_id": 144}),
    "struct fanotify_event_metadata": (24, {"event_len": 0, "vers": 4, "reserved": 5,
                                            "metadata_len": 6, "mask": 8, "fd": 16, "pid": 20}),
    "struct fanotify_event_info_mnt": (16, {"hdr": 0, "mnt_id": 8}),
    # glibc's struct statfs on 64-bit x86_64/aarch64 (helpers.sys.statfs/fstatfs)
    "struct statfs": (120, {"f_type": 0, "f_bsize": 8, "f_blocks": 16, "f_fsid": 56,
                            "f_namelen": 64, "f_frsize": 72, "f_flags": 80, "f_spare": 88}),
}

pytestmark = pytest.mark.no_fork


@pytest.mark.parametrize("struct", LAYOUTS)
def test_struct_size(struct):
    assert ffi.sizeof(struct) == LAYOUTS[struct][0]


@pytest.mark.parametrize("struct,field,offset", [
    (s, f, o) for s, (_, fields) in LAYOUTS.items() for f, o in fields.items()])
def test_field_offset(struct, field, offset):
    assert ffi.offsetof(struct, field) == offset


def test_mnt_id_req_versions():
    from helpers import uapi
    from helpers.mounts import mnt_id_req
    assert mnt_id_req(1).size == uapi.MNT_ID_REQ_SIZE_VER0 == 24
    assert mnt_id_req(1, mnt_ns_id=5).size == uapi.MNT_ID_REQ_SIZE_VER1 == 32
    assert mnt_id_req(mnt_fd=3).size == 32


def test_generated_ffi_module_matches_the_cdef():
    """helpers.sys loads the cdef parsed ahead of time (cffi's out-of-line ABI
    mode); every struct must have the layout a fresh parse of uapi.CDEF gives."""
    import re

    from cffi import FFI

    from helpers import sys as ksys, uapi
    fresh = FFI()
    fresh.cdef(uapi.CDEF)
    structs = re.findall(r"struct\s+(\w+)\s*\{", uapi.CDEF)
    assert structs
    for name in structs:
        t = f"struct {name}"
        assert ksys.ffi.sizeof(t) == fresh.sizeof(t), t
        assert ksys.ffi.alignof(t) == fresh.alignof(t), t
        for field, _ in fresh.typeof(t).fields:
            assert ksys.ffi.offsetof(t, field) == fresh.offsetof(t, field), (t, field)
