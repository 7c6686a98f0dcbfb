#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""The systemd units of tools/systemd: systemd-analyze verify accepts them (when it is installed),
and keylined starts and serves under the sandbox the unit asks for. This host runs no systemd
manager (no systemd-run), so the test builds that sandbox itself from the unit's [Service]
settings, as systemd would: a mount namespace (ProtectSystem=strict: / read-only but the state and
runtime directories; PrivateTmp, ProtectHome, PrivateDevices: a minimal /dev;
ProtectKernelTunables, ProtectControlGroups: /sys, /proc/sys, cgroups read-only), setpriv (User:
nobody, no capabilities, NoNewPrivileges), UMask, and a seccomp filter through libseccomp
(MemoryDenyWriteExecute, RestrictAddressFamilies, RestrictNamespaces, RestrictRealtime,
RestrictSUIDSGID, ProtectClock, ProtectKernelModules, ProtectKernelLogs, ProtectHostname,
LockPersonality, SystemCallArchitectures), checked live by a probe first. Under it keylined (io socket, an LMDB store in the state directory,
an MSK rotation, the admin socket in the runtime directory) prints ready, answers keyline-burst
(every UE verified) and keylinectl, and exits 0 on SIGTERM. Settings the sandbox does not build
are listed as not exercised. Needs root (mount namespaces); skipped (77) otherwise.
    test_systemd.py KEYLINED KEYLINE_BURST KEYLINE_POPULATION KEYLINECTL UNIT UNIT@"""
import ctypes
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kl_itest  # noqa: E402

keylined, burst, popgen, keylinectl, unit, unit_at = sys.argv[1:7]
ck = kl_itest.Checks('systemd')

# what the sandbox below builds from the unit; every other [Service] setting is reported
BUILT = {'User', 'Group', 'NoNewPrivileges', 'CapabilityBoundingSet', 'ProtectSystem',
         'ProtectHome', 'PrivateTmp', 'PrivateDevices', 'ProtectKernelTunables', 'UMask',
         'StateDirectory', 'RuntimeDirectory', 'Environment', 'MemoryDenyWriteExecute',
         'RestrictAddressFamilies', 'RestrictNamespaces', 'RestrictRealtime', 'RestrictSUIDSGID',
         'ProtectClock', 'ProtectKernelModules', 'ProtectKernelLogs', 'ProtectHostname',
         'SystemCallArchitectures', 'LockPersonality', 'ProtectControlGroups'}
NOT_SANDBOX = {'Type', 'EnvironmentFile', 'ExecStart', 'KillSignal', 'TimeoutStopSec', 'Restart',
               'RestartSec', 'StateDirectoryMode', 'RuntimeDirectoryMode',
               'ConfigurationDirectory', 'LimitMEMLOCK', 'LimitNOFILE'}


def service_settings(path):
    s, section = {}, None
    for line in open(path):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        if line.startswith('['):
            section = line
            continue
        if section == '[Service]' and '=' in line:
            k, v = line.split('=', 1)
            s.setdefault(k, []).append(v)
    return s


def verify(tmp):
    sa = shutil.which('systemd-analyze')
    if not sa:
        print('systemd-analyze not installed: units not verified', flush=True)
        return
    for u in (unit, unit_at):
        dst = os.path.join(tmp, os.path.basename(u))
        with open(u) as f, open(dst, 'w') as g:
            g.write(f.read().replace('/usr/local/bin/keylined', os.path.abspath(keylined)))
        name = dst.replace('@.service', '@node-a.service')
        if name != dst:
            shutil.copy(dst, name)
        p = subprocess.run([sa, 'verify', '--man=no', name], capture_output=True, text=True,
                           timeout=60)
        ck.eq((p.returncode, (p.stdout + p.stderr).strip()), (0, ''),
              f'systemd-analyze verify {os.path.basename(name)}')
        p = subprocess.run([sa, 'security', '--offline=true', name], capture_output=True,
                           text=True, timeout=60)
        m = re.search(r'Overall exposure level for \S+: (\S+ \S+)', p.stdout + p.stderr)
        print(f'systemd-analyze security {os.path.basename(name)}: '
              f'{m.group(1) if m else (p.stdout + p.stderr)[-300:]}', flush=True)


# The unit's seccomp-based settings, as systemd builds them (close enough to refuse what they
# refuse), installed by seccomp_exec.py (written next to the config) right before keylined is
# executed, after the namespace is set up and the privileges are dropped.
SECCOMP_EXEC = r'''
import ctypes, errno, json, os, sys

class Cmp(ctypes.Structure):
    _fields_ = [('arg', ctypes.c_uint), ('op', ctypes.c_int), ('a', ctypes.c_uint64),
                ('b', ctypes.c_uint64)]

NE, EQ, GE, MASKED_EQ = 1, 4, 5, 7
FAMILIES = {'AF_UNIX': 1, 'AF_INET': 2, 'AF_INET6': 10, 'AF_NETLINK': 16, 'AF_PACKET': 17}
st = json.loads(os.environ.pop('KL_SECCOMP'))
lib = ctypes.CDLL('libseccomp.so.2', use_errno=True)
lib.seccomp_init.restype = ctypes.c_void_p
# the native architecture only: SystemCallArchitectures=native
ctx = ctypes.c_void_p(lib.seccomp_init(ctypes.c_uint32(0x7fff0000)))


def rule(err, name, *cmps):
    nr = lib.seccomp_syscall_resolve_name(name.encode())
    arr = (Cmp * len(cmps))(*[Cmp(*c) for c in cmps])
    if lib.seccomp_rule_add_array(ctx, ctypes.c_uint32(0x00050000 | err), nr, len(cmps), arr):
        sys.exit('seccomp rule ' + name)


def yes(k):
    return st.get(k, 'no') == 'yes'


if yes('MemoryDenyWriteExecute'):  # nothing both writable and executable, nothing made exec
    rule(errno.EPERM, 'mmap', (2, MASKED_EQ, 6, 6))
    for n in ('mprotect', 'pkey_mprotect'):
        rule(errno.EPERM, n, (2, MASKED_EQ, 4, 4))
    rule(errno.EPERM, 'shmat', (2, MASKED_EQ, 0o100000, 0o100000))
if st.get('RestrictAddressFamilies'):
    allowed = {FAMILIES[f] for f in st['RestrictAddressFamilies'].split()}
    for f in range(46):
        if f not in allowed:
            rule(errno.EAFNOSUPPORT, 'socket', (0, EQ, f, 0))
    rule(errno.EAFNOSUPPORT, 'socket', (0, GE, 46, 0))
if yes('RestrictNamespaces'):  # no new namespaces: clone flags, unshare, setns; clone3 falls back
    for flag in (0x20000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                 0x40000000, 0x00000080):
        rule(errno.EPERM, 'clone', (0, MASKED_EQ, flag, flag))
    rule(errno.EPERM, 'unshare', (0, NE, 0, 0))
    rule(errno.EPERM, 'setns')
    rule(errno.ENOSYS, 'clone3')
if yes('RestrictRealtime'):
    for pol in (1, 2):  # SCHED_FIFO, SCHED_RR
        rule(errno.EPERM, 'sched_setscheduler', (1, EQ, pol, 0))
    rule(errno.EPERM, 'sched_setattr')
if yes('RestrictSUIDSGID'):
    for bit in (0o4000, 0o2000):
        rule(errno.EPERM, 'chmod', (1, MASKED_EQ, bit, bit))
        rule(errno.EPERM, 'fchmod', (1, MASKED_EQ, bit, bit))
        rule(errno.EPERM, 'fchmodat', (2, MASKED_EQ, bit, bit))
if yes('ProtectClock'):
    for n in ('clock_settime', 'clock_adjtime', 'settimeofday', 'adjtimex'):
        rule(errno.EPERM, n)
if yes('ProtectKernelModules'):
    for n in ('init_module', 'finit_module', 'delete_module'):
        rule(errno.EPERM, n)
if yes('ProtectKernelLogs'):
    rule(errno.EPERM, 'syslog')
if yes('LockPersonality'):  # as systemd: any personality but the current one (PER_LINUX)
    rule(errno.EPERM, 'personality', (0, NE, 0, 0))
if yes('ProtectHostname'):
    for n in ('sethostname', 'setdomainname'):
        rule(errno.EPERM, n)
if lib.seccomp_load(ctx):
    sys.exit('seccomp_load failed')
os.execv(sys.argv[1], sys.argv[1:])
'''
SECCOMP_KEYS = ('MemoryDenyWriteExecute', 'RestrictAddressFamilies', 'RestrictNamespaces',
                'RestrictRealtime', 'RestrictSUIDSGID', 'ProtectClock', 'ProtectKernelModules',
                'ProtectKernelLogs', 'ProtectHostname', 'SystemCallArchitectures',
                'LockPersonality')


SANDBOX = r'''set -e
S=$1; R=$2; shift 2
mount -n --bind "$S" "$S"; mount -n --bind "$R" "$R"
[ "$PROTECT_SYSTEM" = strict ] && mount -n -o remount,bind,ro /
[ "$PRIVATE_TMP" = yes ] && mount -n -t tmpfs -o mode=1777 tmpfs /tmp
if [ "$PROTECT_HOME" = yes ]; then for h in /home /root; do [ -d $h ] && mount -n -t tmpfs tmpfs $h; done; fi
if [ "$PROTECT_KERNEL_TUNABLES" = yes ]; then
  mount -n -o remount,bind,ro /sys; mount -n --bind /proc/sys /proc/sys; mount -n -o remount,bind,ro /proc/sys
fi
if [ "$PROTECT_CONTROL_GROUPS" = yes ]; then
  awk '$5 ~ "^/sys/fs/cgroup" {print $5}' /proc/self/mountinfo | while read -r m; do
    mount -n -o remount,bind,ro "$m"; done
fi
if [ "$PRIVATE_DEVICES" = yes ]; then
  D=$(mktemp -d /tmp/kl-dev.XXXXXX); mount -n -t tmpfs -o mode=755 tmpfs "$D"
  for n in null zero full random urandom tty; do touch "$D/$n"; mount -n --bind /dev/$n "$D/$n"; done
  mkdir "$D/shm" "$D/pts"; mount -n -t tmpfs -o mode=1777 tmpfs "$D/shm"; mount -n --move "$D" /dev
fi
umask "$UMASK"
exec setpriv --reuid 65534 --regid 65534 --clear-groups $NNP --bounding-set -all --inh-caps -all \
  env XDG_RUNTIME_DIR="$R" "$PYTHON" "$SECCOMP_EXEC" "$@"
'''


def sandboxed(settings, tmp):
    st = settings
    notex = sorted(k for k in st if k not in BUILT | NOT_SANDBOX)
    print('[Service] settings not built here: ' + (', '.join(notex) or 'none'), flush=True)
    ck.eq(st.get('ProtectSystem', [''])[-1], 'strict', 'the unit protects the system (strict)')
    ck.eq(st.get('CapabilityBoundingSet', [None])[-1], '', 'the unit keeps no capability')
    state = tempfile.mkdtemp(prefix='kl-systemd-state-', dir='/var/lib')
    run = tempfile.mkdtemp(prefix='kl-systemd-run-', dir='/run')
    try:
        etc = os.path.join(state, 'etc')
        os.mkdir(etc)
        pop = os.path.join(etc, 'pop.txt')
        subprocess.run([popgen, '--seed', '5', '--ues', '1000', '--groups', '4', '--emses', '4',
                        '--imsis', '4', '--appids', '4', '-o', pop], check=True)
        kek = os.path.join(etc, 'kek')
        with open(kek, 'wb') as f:
            f.write(os.urandom(32))
        os.chmod(kek, 0o600)
        port = kl_itest.free_udp_port()
        cfg = kl_itest.write_config(os.path.join(etc, 'k.yaml'), ipv4=('127.0.0.1',), ipv6=(),
                                    admin=os.path.join(run, 'admin.sock'),
                                    table={'ues': 2000, 'groups': 8, 'emses': 8, 'imsis': 8,
                                           'appids': 8},
                                    extra={'io': 'socket', 'udp_port': port, 'metrics': '""',
                                           'store': '{path: %s/store, kek_file: %s}'
                                           % (state, kek),
                                           'msk_rotation': '[{group: "00f110:3", period_s: 3600, '
                                                           'predelivery_s: 60}]'})
        # keylined where the unit's sandbox sees it (as installed: the build directory may be
        # under /tmp or /root, which PrivateTmp and ProtectHome hide)
        kbin = os.path.join(state, 'bin')
        os.mkdir(kbin)
        shutil.copy2(keylined, os.path.join(kbin, 'keylined'))
        for root, dirs, files in os.walk(state):  # the service user's, as StateDirectory=
            for x in dirs + files + ['.']:
                os.chown(os.path.join(root, x), 65534, 65534)
        os.chown(run, 65534, 65534)
        os.chmod(state, 0o755)
        os.chmod(run, 0o755)
        env = dict(os.environ, PROTECT_SYSTEM=st.get('ProtectSystem', [''])[-1],
                   PRIVATE_TMP=st.get('PrivateTmp', [''])[-1],
                   PROTECT_HOME=st.get('ProtectHome', [''])[-1],
                   PROTECT_KERNEL_TUNABLES=st.get('ProtectKernelTunables', [''])[-1],
                   PRIVATE_DEVICES=st.get('PrivateDevices', [''])[-1],
                   PROTECT_CONTROL_GROUPS=st.get('ProtectControlGroups', [''])[-1],
                   UMASK=st.get('UMask', ['0022'])[-1],
                   NNP='--no-new-privs' if st.get('NoNewPrivileges', [''])[-1] == 'yes' else '')
        sx = os.path.join(etc, 'seccomp_exec.py')
        with open(sx, 'w') as f:
            f.write(SECCOMP_EXEC)
        os.chmod(sx, 0o644)
        # a python outside /root and /home (ProtectHome hides them)
        env['PYTHON'] = '/usr/bin/python3' if os.access('/usr/bin/python3', os.X_OK) else sys.executable
        env['SECCOMP_EXEC'] = sx
        env['KL_SECCOMP'] = json.dumps({k: st[k][-1] for k in SECCOMP_KEYS if k in st})
        # the filter is live: each refusal the unit asks for, seen from a probe run the same way
        probe = ('import ctypes, mmap, os, socket, time\n'
                 'def t(f):\n try: f(); return "allowed"\n except OSError as e: return e.errno\n'
                 'def unshare(flags):\n'
                 ' libc = ctypes.CDLL(None, use_errno=True)\n'
                 ' if libc.unshare(flags): raise OSError(ctypes.get_errno(), "unshare")\n'
                 'def personality(p):\n'
                 ' libc = ctypes.CDLL(None, use_errno=True)\n'
                 ' if libc.personality(p) == -1: raise OSError(ctypes.get_errno(), "pers")\n'
                 'print(t(lambda: mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC)),'
                 ' t(lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW)),'
                 ' t(lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close()),'
                 ' t(lambda: unshare(0x04000000)),'
                 ' t(lambda: os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))),'
                 ' t(lambda: time.clock_settime(time.CLOCK_REALTIME, time.time())),'
                 ' t(lambda: os.chmod(%r, 0o4755)),'
                 ' t(lambda: personality(0x0008)))\n' % os.path.join(etc, 'probe'))
        open(os.path.join(etc, 'probe'), 'w').close()
        p = subprocess.run([sys.executable, sx, sys.executable, '-c', probe],
                           capture_output=True, text=True, timeout=30, env=env)
        ck.eq(p.stdout.split(), [str(errno.EPERM), str(errno.EAFNOSUPPORT), 'allowed'] +
              [str(errno.EPERM)] * 5, f'the seccomp filter refuses what the unit says '
              f'(W+X map, AF_PACKET, unshare, SCHED_FIFO, clock, setuid bit, personality) '
              f'({p.stderr[-200:]})')
        script = os.path.join(tmp, 'sandbox.sh')
        with open(script, 'w') as f:
            f.write(SANDBOX)
        eal = kl_itest.eal_args(kl_itest.unique('sysd'))
        kd = kl_itest.Keylined(os.path.join(kbin, 'keylined'), eal, cfg, ['-p', pop],
                               workdir=tmp,
                               wrap=['unshare', '-m', '--propagation', 'private', '--', 'sh',
                                     script, state, run],
                               env=env)
        try:
            kd.wait_ready(timeout=60)
            ck.check(True, 'keylined ready in the sandbox')
            p = subprocess.run([burst, '--io', 'socket', '--population', pop, '--server-port',
                                str(port), '--ues', '300', '--mode', 'max', '--interval-ms', '0'],
                               capture_output=True, text=True, timeout=60)
            s = json.loads(p.stdout.splitlines()[-1]) if p.stdout.strip() else {}
            ck.eq((p.returncode, s.get('ok')), (0, 300), 'keyline-burst: every UE verified')
            p = subprocess.run([keylinectl, '-s', os.path.join(run, 'admin.sock'), 'status'],
                               capture_output=True, text=True, timeout=30)
            ck.eq(p.returncode, 0, f'keylinectl status over the admin socket ({p.stderr[-200:]})')
            ck.check(os.path.exists(os.path.join(state, 'store', 'data.mdb')),
                     'the store was written in the state directory')
            mode = os.stat(os.path.join(state, 'store', 'data.mdb')).st_mode & 0o777
            ck.eq(mode & 0o077, 0, f'store files private (mode {mode:o})')
            rc, _ = kd.stop()
            ck.eq(rc, 0, 'keylined exits 0 on SIGTERM')
        finally:
            kd.kill()
            log = open(kd.log_path).read()
            if 'keylined: ready' not in ''.join(kd.out):
                print('keylined stderr:\n' + log[-2000:], flush=True)
    finally:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(run, ignore_errors=True)


def main():
    tmp = tempfile.mkdtemp(prefix='kl-systemd-')
    try:
        verify(tmp)
        ck.eq(service_settings(unit_at).keys(), service_settings(unit).keys(),
              'keylined@.service has the same settings as keylined.service')
        if os.geteuid() != 0 or not shutil.which('unshare') or not shutil.which('setpriv'):
            print('not root, or no unshare/setpriv: sandbox not built (skipped)', flush=True)
            return 77 if not ck.bad else ck.done()
        sandboxed(service_settings(unit), tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ck.done()


if __name__ == '__main__':
    sys.exit(main())
