#!/usr/bin/env python3
"""Drop-in for the original MoltenIron's DevStack hook, test_hook_mi_ipmiblob.py.

    test_hook_mi_ipmiblob.py [-c DIR] -i|--hardware-info FILE -l|--localrc FILE OWNER NUMBER [NODE_POOL]

Checks out NUMBER nodes of NODE_POOL (default "default") for OWNER with `molteniron allocate`, which
replaces FILE of --hardware-info with DevStack's hardware info and appends DevStack's settings to the
--localrc FILE, in the formats the original hook wrote. -c DIR is the original's settings directory
(molteniron's --conf-dir: DIR/conf.yaml's maxTime becomes the lease).

molteniron is $MOLTENIRON, else `molteniron` on PATH. Nothing is printed on success: molteniron's own
output holds the BMC passwords and would end up in the job's log. The exit code is molteniron's
(3: not enough nodes, 5: database unreachable, ...; see its README), 2 for a bad command line and 127
when molteniron cannot be run.

Python 3 and its standard library only: argparse parses the command line exactly as the original
hook's argparse did (--opt=value, -iFILE, abbreviations such as --hard).
"""

import argparse
import os
import subprocess
import sys


def parse(argv):
    parser = argparse.ArgumentParser(
        description="Check out nodes from molteniron and write DevStack's hardware info and localrc."
    )
    parser.add_argument(
        "-c",
        "--conf-dir",
        metavar="DIR",
        help="the original MoltenIron's settings directory (DIR/conf.yaml's maxTime is the lease)",
    )
    parser.add_argument(
        "-i",
        "--hardware-info",
        metavar="FILE",
        required=True,
        help="DevStack's hardware info file (replaced)"
    )
    parser.add_argument(
        "-l", "--localrc", metavar="FILE", required=True, help="DevStack's localrc (appended to)"
    )
    parser.add_argument("owner", metavar="OWNER", help="who holds the nodes")
    parser.add_argument("number", metavar="NUMBER", type=int, help="how many nodes")
    parser.add_argument(
        "node_pool", metavar="NODE_POOL", nargs="?", default="default", help="the pool"
    )
    return parser.parse_args(argv)


def main(argv):
    args = parse(argv)
    molteniron = os.environ.get("MOLTENIRON") or "molteniron"
    command = [molteniron]
    if args.conf_dir is not None:
        command += ["--conf-dir", args.conf_dir]
    command += ["allocate", "--hardware-info", args.hardware_info, "--localrc", args.localrc]
    # "--": an OWNER that starts with "-" is still the owner.
    command += ["-o", "json", "--", args.owner, str(args.number), args.node_pool]
    try:
        return subprocess.run(command, stdout=subprocess.DEVNULL, check=False).returncode
    except OSError as e:
        print(
            "test_hook_mi_ipmiblob: cannot run %s: %s (put molteniron on PATH or set MOLTENIRON)"
            % (molteniron, e.strerror),
            file=sys.stderr,
        )
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
