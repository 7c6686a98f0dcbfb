#!/usr/bin/env python3
"""The store replicator on etcd (control/store/kl_cluster_repl.c) against real etcd members
(Debian's etcd-server) started here on loopback ports; cluster_repl_driver does the store side.

    test_cluster_repl.py CLUSTER_REPL_DRIVER ETCD_BINARY GROUP

GROUP single: one member (data in tmpfs): the writes scenario (every write kind, a batch of
1,000 puts in 8 transactions: etcd holds exactly the LMDB records at their stamps), conflict
(two stores on one catalogue: the stale read-modify-write gets -EAGAIN), down (the member
killed: -ENOTCONN, LMDB and the key table untouched).
GROUP bench: durable pushes/s through etcd with one writer: 10,000 UEs through kl_write in
batches of 256 and 1024 (the Diameter feed commits up to KL_FEED_BATCH, 256), the transactions
of a commit one after the other or over several connections at once, etcd's data on disk (fsync
on), against one member and against three; the figures are printed. Then two of the three
members are killed (a follower and the leader): writes are refused with a clear error in bounded
time.
"""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kl_itest import Checks  # noqa: E402
from test_etcd import run_driver, start_cluster  # noqa: E402


def make_kek(d):
    path = os.path.join(d, 'kek')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, os.urandom(32))
    os.close(fd)
    return path


def group_single(ck, driver, etcd, work):
    kek = make_kek(work)
    cl = start_cluster(etcd, 1)
    try:
        for i, sc in enumerate(['writes', 'conflict']):
            run_driver(ck, driver, sc, cl.client, f'/keyline/t{i}', work, kek)
        run_driver(ck, driver, 'down', cl.client, '/keyline/down', work, kek, cl.procs[0].pid)
        ck.check(cl.procs[0].poll() is not None, 'the member was killed by the driver')
    finally:
        cl.stop()


def group_bench(ck, driver, etcd, work):
    kek = make_kek(work)
    disk = tempfile.mkdtemp(prefix='kl-etcd-disk-', dir=os.environ.get('KL_ETCD_DISK', '/var/tmp'))
    try:
        for members in (1, 3):
            cl = start_cluster(etcd, members, base=disk)
            try:
                for batch, par in ((256, 1), (256, 2), (1024, 1), (1024, 8)):
                    f = run_driver(ck, driver, 'bench', cl.client,
                                   f'/keyline/b{members}x{batch}p{par}', work, kek, 10000, batch,
                                   par, timeout=300)
                    print(f'  {members} member(s), batch {batch}, {par} connection(s): '
                          f'{f.get("pushes_per_s", "?")} durable pushes/s', flush=True)
                if members == 3:  # two of three gone: writes refused, clearly, in bounded time
                    leader = cl.leader()
                    for i in [j for j in range(3) if j != leader][:1] + [leader]:
                        cl.kill(i)
                    run_driver(ck, driver, 'quorum', cl.client, '/keyline/q', work, kek)
            finally:
                cl.stop()
    finally:
        shutil.rmtree(disk, ignore_errors=True)


def main():
    driver, etcd, group = sys.argv[1], sys.argv[2], sys.argv[3]
    ck = Checks(f'cluster-repl-{group}')
    if not (os.path.isfile(etcd) and os.access(etcd, os.X_OK)):
        print(f'FAIL: no etcd at {etcd} (tools/setup.sh installs etcd-server)')
        return 1
    t0 = time.time()
    work = tempfile.mkdtemp(prefix='kl-crepl-')
    try:
        if group == 'single':
            group_single(ck, driver, etcd, work)
        elif group == 'bench':
            group_bench(ck, driver, etcd, work)
        else:
            print(f'unknown group {group}')
            return 2
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f'cluster-repl-{group}: {time.time() - t0:.1f} s', flush=True)
    return ck.done()


if __name__ == '__main__':
    sys.exit(main())
