#!/bin/bash
# molteniron DevStack plugin: `stack extra` allocates (waiting in line) and writes IRONIC_HWINFO_FILE and
# the IRONIC_HW_* variables ironic's plugin reads in its own `stack extra`; `unstack` releases.
# molteniron's output carries BMC passwords, so it goes to a file and never to the (xtrace) log.

function molteniron_run {
    if [[ -n "$MOLTENIRON_CONFIG" ]]; then
        MOLTENIRON_CONFIG=$MOLTENIRON_CONFIG "$MOLTENIRON_BIN" "$@"
    else
        "$MOLTENIRON_BIN" "$@"
    fi
}

function molteniron_allocate {
    local localrc out rc=0
    localrc=$(mktemp)
    out=$(mktemp)
    mkdir -p "$(dirname "$IRONIC_HWINFO_FILE")"
    # shellcheck disable=SC2086 # MOLTENIRON_POOL and MOLTENIRON_ALLOCATE_ARGS are word lists
    molteniron_run allocate "$MOLTENIRON_OWNER" "$MOLTENIRON_COUNT" $MOLTENIRON_POOL $MOLTENIRON_ALLOCATE_ARGS \
        --wait --wait-timeout "$MOLTENIRON_WAIT_TIMEOUT" \
        --hardware-info "$IRONIC_HWINFO_FILE" --localrc "$localrc" -o json >"$out" || rc=$?
    rm -f "$out"
    if [[ $rc -ne 0 ]]; then
        rm -f "$localrc"
        die $LINENO "molteniron allocate for $MOLTENIRON_OWNER failed (exit $rc)"
    fi
    # IRONIC_HW_ARCH, IRONIC_HW_NODE_CPU/RAM/DISK and ALLOCATION_POOL, of the first node
    source "$localrc"
    rm -f "$localrc"
    export IRONIC_HW_ARCH IRONIC_HW_NODE_CPU IRONIC_HW_NODE_RAM IRONIC_HW_NODE_DISK
}

function molteniron_release {
    molteniron_run release "$MOLTENIRON_OWNER" >/dev/null || die $LINENO "molteniron release for $MOLTENIRON_OWNER failed"
}

if is_service_enabled molteniron; then
    if [[ "$1" == "stack" && "$2" == "extra" ]]; then
        molteniron_allocate
    elif [[ "$1" == "unstack" ]]; then
        molteniron_release
    fi
fi
