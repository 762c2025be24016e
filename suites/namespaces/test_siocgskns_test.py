"""Twins of tools/testing/selftests/namespaces/siocgskns_test.c: SIOCGSKNS
(net/socket.c sock_ioctl(), 4.9) opens the network namespace a socket was
made in, and (6.19) brings that namespace back to life.

A socket pins its network namespace only passively. Since 6.19 a namespace
is listed by listns() and opened by id only while it has active references
(tasks, or open namespace files: fs/nsfs.c nsfs_init_inode() takes one,
nsfs_evict() drops it). So once the socket's creator has exited, it is the
namespace file SIOCGSKNS returns, not the socket, that makes the namespace
(and its owning user namespaces, up the chain) active again; closing that
file makes them inactive again. Upstream's "keeps_netns_active" and
"netns_lifecycle" check only that the returned file can be reopened through
/proc/self/fd, which holds on every kernel; the listns()/handle cases check
the active-reference behaviour, and need listns() (6.19, the same series).

Sockets come from a child that made them and exited (upstream: fork +
SCM_RIGHTS; here the same through socket.send_fds()). SIOCGSKNS needs
CAP_NET_ADMIN over the socket's network namespace (sock_ioctl()).
"""
import errno
import os
import socket

import pytest

from harness.upstream import upstream
from helpers import sys as k
from helpers import uapi
from helpers.errors import raises_errno
from helpers.ns import id_of, listns_all, ns_get_id, open_ns_by_id, setup_userns
from helpers.proc import in_child, reporting_child
from suites.namespaces.common import assert_active, assert_inactive, opens

FILE = "namespaces/siocgskns_test.c"


@pytest.fixture
def net_admin():
    """SIOCGSKNS needs CAP_NET_ADMIN over the socket's network namespace
    (net/socket.c sock_ioctl(): EPERM otherwise). Unprivileged, the case runs
    in a user namespace with a network namespace of its own."""
    if os.geteuid() != 0:
        setup_userns()
        k.unshare(uapi.CLONE_NEWNET)


def netns_of(sock):
    """ioctl(sock, SIOCGSKNS): a new fd for the socket's network namespace."""
    return k.ioctl(sock.fileno(), uapi.SIOCGSKNS)


def ino(fd_or_path):
    return (os.fstat(fd_or_path) if isinstance(fd_or_path, int) else os.stat(fd_or_path)).st_ino


def orphan_socket(setup, family=socket.AF_INET, kind=socket.SOCK_DGRAM):
    """A socket made by a child after setup() (which returns what the child
    reports); the child has exited when this returns (socket, report)."""
    ours, theirs = socket.socketpair()

    def body():
        report = setup()
        s = socket.socket(family, kind)
        socket.send_fds(theirs, [b"X"], [s.fileno()])
        return report
    report = in_child(body)
    _, fds, _, _ = socket.recv_fds(ours, 1, 1)
    return socket.socket(fileno=fds[0]), report


def new_netns(report=True):
    """unshare(CLONE_NEWNET); its NS_GET_ID (6.18+) if report."""
    k.unshare(uapi.CLONE_NEWNET)
    return id_of("net") if report else None


def new_userns_and_netns():
    setup_userns()
    k.unshare(uapi.CLONE_NEWNET)
    return id_of("net"), id_of("user")


@pytest.mark.parametrize("family,kind,proto", [
    pytest.param(socket.AF_INET, socket.SOCK_DGRAM, 0, id="udp",
                 marks=upstream(FILE, "global.siocgskns_basic")),
    pytest.param(socket.AF_INET, socket.SOCK_STREAM, 0, id="tcp",
                 marks=upstream(FILE, "global.siocgskns_socket_types")),
    pytest.param(socket.AF_INET, socket.SOCK_DGRAM, 0, id="udp-types",
                 marks=upstream(FILE, "global.siocgskns_socket_types")),
    pytest.param(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP, id="raw",
                 marks=[upstream(FILE, "global.siocgskns_socket_types"), pytest.mark.root]),
    pytest.param(socket.AF_INET6, socket.SOCK_STREAM, 0, id="ipv6",
                 marks=upstream(FILE, "global.siocgskns_ipv6")),
])
@pytest.mark.userns
def test_socket_reports_our_network_namespace(net_admin, family, kind, proto):
    try:
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        if e.errno != errno.EAFNOSUPPORT:
            raise
        pytest.skip(f"address family {family.name} not in this kernel (EAFNOSUPPORT)")
    fd = netns_of(sock)
    assert ino(fd) == ino("/proc/self/ns/net")
    assert k.ioctl(fd, uapi.NS_GET_NSTYPE) == uapi.CLONE_NEWNET


@upstream(FILE, "global.siocgskns_keeps_netns_active")
@pytest.mark.root
def test_orphan_socket_opens_its_creators_network_namespace():
    """After its creator exited, SIOCGSKNS opens the creator's namespace;
    once the socket is closed, the ioctl on its number is EBADF."""
    sock, _ = orphan_socket(lambda: new_netns(report=False))
    fd = netns_of(sock)
    assert ino(fd) != ino("/proc/self/ns/net")
    os.close(os.open(f"/proc/self/fd/{fd}", os.O_RDONLY))
    number = sock.fileno()
    sock.close()
    with raises_errno(errno.EBADF):
        k.ioctl(number, uapi.SIOCGSKNS)


@upstream(FILE, "global.siocgskns_across_setns")
@pytest.mark.root
def test_socket_keeps_reporting_its_namespace_after_we_move():
    before = ino("/proc/self/ns/net")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    k.unshare(uapi.CLONE_NEWNET)
    assert ino("/proc/self/ns/net") != before
    assert ino(netns_of(sock)) == before


@upstream(FILE, "global.siocgskns_non_socket")
@pytest.mark.parametrize("opener", [lambda: os.open("/dev/null", os.O_RDONLY),
                                    lambda: os.pipe()[0]], ids=["dev-null", "pipe"])
def test_non_socket_is_enotty(opener):
    """Upstream accepts ENOTTY or EINVAL; neither /dev/null (no ioctl) nor a
    pipe (pipe_ioctl(): -ENOIOCTLCMD) knows SIOCGSKNS: vfs_ioctl() says ENOTTY."""
    with raises_errno(errno.ENOTTY):
        k.ioctl(opener(), uapi.SIOCGSKNS)


@upstream(FILE, "global.siocgskns_multiple_sockets")
@pytest.mark.root
def test_namespace_files_outlive_some_of_the_sockets():
    k.unshare(uapi.CLONE_NEWNET)
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(5)]
    fds = [netns_of(s) for s in socks]
    assert {ino(fd) for fd in fds} == {ino("/proc/self/ns/net")}
    for s in socks[:3]:
        s.close()
    for fd in fds[3:]:
        again = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY)
        assert ino(again) == ino(fd)
        os.close(again)


@upstream(FILE, "global.siocgskns_netns_lifecycle")
@pytest.mark.root
def test_namespace_file_from_socket_outlives_the_creator():
    """SIOCGSKNS while the creator lives; after it exits the file reopens
    (through /proc/self/fd) as the same namespace."""
    ours, theirs = socket.socketpair()

    def creator():
        k.unshare(uapi.CLONE_NEWNET)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        socket.send_fds(theirs, [b"X"], [s.fileno()])
    with reporting_child(creator):
        _, fds, _, _ = socket.recv_fds(ours, 1, 1)
        fd = netns_of(socket.socket(fileno=fds[0]))
        inode = ino(fd)
    again = os.open(f"/proc/self/fd/{fd}", os.O_RDONLY)
    assert ino(again) == inode != ino("/proc/self/ns/net")


# --- active references (6.19): listns() and namespace handles -----------------
ACTIVE_REFS = pytest.mark.requires("listns", "nsfs_file_handle")


@pytest.mark.root
@ACTIVE_REFS
def test_orphan_socket_alone_keeps_no_namespace_active():
    """Beyond upstream: with its creator gone, a socket's network namespace
    is neither listed nor opened by id until SIOCGSKNS makes a file of it."""
    sock, net = orphan_socket(new_netns)
    assert_inactive(net)
    fd = netns_of(sock)
    assert_active(net)
    os.close(fd)


@upstream(FILE, "global.siocgskns_listns_visibility")
@pytest.mark.root
@ACTIVE_REFS
def test_namespace_from_orphan_socket_listed_until_its_file_closes():
    """SIOCGSKNS's file makes the namespace listed (by type, and under its
    owner's user_ns_id); closing the socket and that file unlists it."""
    sock, net = orphan_socket(new_netns)
    fd = netns_of(sock)
    assert ns_get_id(fd) == net
    owner = ns_get_id(k.ioctl(fd, uapi.NS_GET_USERNS))
    assert net in listns_all(uapi.CLONE_NEWNET)
    assert net in listns_all(uapi.CLONE_NEWNET, user_ns_id=owner)
    sock.close()
    os.close(fd)
    assert net not in listns_all(uapi.CLONE_NEWNET)


@upstream(FILE, "global.siocgskns_file_handle")
@pytest.mark.root
@ACTIVE_REFS
def test_handle_opens_while_namespace_file_is_open_then_estale():
    """open_by_handle_at({ns_id}) works while SIOCGSKNS's file is open, is
    ESTALE once it is closed (nsfs_fh_to_dentry(): ns_get_unless_inactive()),
    and works again after another SIOCGSKNS."""
    sock, net = orphan_socket(new_netns)
    fd = netns_of(sock)
    reopened = open_ns_by_id(net)
    assert (ino(reopened), os.fstat(reopened).st_dev) == (ino(fd), os.fstat(fd).st_dev)
    os.close(reopened)
    os.close(fd)
    assert opens(net) == errno.ESTALE
    fd = netns_of(sock)
    assert opens(net) == 0


@upstream(FILE, "global.siocgskns_listns_and_file_handle")
@pytest.mark.root
@ACTIVE_REFS
def test_owner_user_namespace_follows_its_network_namespace():
    """A child's user + network namespace, left behind in a socket: after
    SIOCGSKNS both are listed and the netns opens by id; with every file
    closed, neither is listed and the handle is ESTALE; SIOCGSKNS again
    lists both."""
    sock, (net, user) = orphan_socket(new_userns_and_netns)
    fd = netns_of(sock)
    owner = k.ioctl(fd, uapi.NS_GET_USERNS)
    assert ns_get_id(owner) == user
    os.close(owner)
    assert_active(net, user)
    os.close(fd)
    assert_inactive(net, user)
    fd = netns_of(sock)
    assert_active(net, user)
    sock.close()
    os.close(fd)
    assert_inactive(net, user)


def nested_userns_chain():
    """userns L1 > L2 > L3 (setup_userns() three times, one process instead
    of upstream's three) and a network namespace owned by L3."""
    users = []
    for _ in range(3):
        setup_userns()
        users.append(id_of("user"))
    k.unshare(uapi.CLONE_NEWNET)
    return id_of("net"), users


@upstream(FILE, "global.siocgskns_multilevel_resurrection")
@pytest.mark.root
@ACTIVE_REFS
def test_namespace_file_revives_the_whole_owner_chain_twice():
    sock, (net, users) = orphan_socket(nested_userns_chain)
    assert_inactive(net, *users)
    for _ in range(2):
        fd = netns_of(sock)
        assert_active(net, *users)
        os.close(fd)
        assert_inactive(net, *users)
