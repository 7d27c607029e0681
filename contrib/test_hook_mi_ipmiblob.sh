#!/bin/sh
# Drop-in for the original MoltenIron's DevStack hook test_hook_mi_ipmiblob.sh: runs
# test_hook_mi_ipmiblob.py, which lies next to this script, with the same arguments:
#
#     test_hook_mi_ipmiblob.sh [-c DIR] -i|--hardware-info FILE -l|--localrc FILE OWNER NUMBER [NODE_POOL]
#
# Without arguments it runs what the original script ran in the original's tox test: one node for a
# new random owner, settings from testenv/etc/molteniron/, files under testenv/tmp/.
here=$(dirname "$(readlink -f "$0" 2>/dev/null || printf '%s' "$0")")
if [ "$#" -eq 0 ]; then
    owner=$(uuidgen 2>/dev/null || cat /proc/sys/kernel/random/uuid) || exit 1
    set -- --conf-dir=testenv/etc/molteniron/ --hardware-info=testenv/tmp/hardware_info \
        --localrc=testenv/tmp/localrc "$owner" 1
fi
exec python3 "$here/test_hook_mi_ipmiblob.py" "$@"
