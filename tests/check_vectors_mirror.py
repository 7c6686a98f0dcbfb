#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-3-Clause
"""tests/vectors mirrors shared/vectors for clones that have no shared/ beside them: when both
exist they must be identical, so a vector cannot change in one place only."""
import filecmp
import os
import sys

top = sys.argv[1]
mirror = os.path.join(top, 'tests', 'vectors')
shared = os.path.join(top, '..', 'shared', 'vectors')
files = sorted(os.listdir(mirror))
if not os.path.isdir(shared):
    print(f'vectors mirror: no shared/ beside the project; {len(files)} mirrored files used')
    print('1 passed, 0 failed')
    sys.exit(0)
want = sorted(f for f in os.listdir(shared) if os.path.isfile(os.path.join(shared, f)))
bad = [f for f in want if f not in files or not filecmp.cmp(os.path.join(shared, f), os.path.join(mirror, f), shallow=False)]
extra = [f for f in files if f not in want]
for f in bad:
    print(f'FAIL: tests/vectors/{f} differs from shared/vectors/{f} (copy it over)')
for f in extra:
    print(f'FAIL: tests/vectors/{f} is not in shared/vectors')
print(f'{len(want) - len(bad)} passed, {len(bad) + len(extra)} failed')
sys.exit(1 if bad or extra else 0)
