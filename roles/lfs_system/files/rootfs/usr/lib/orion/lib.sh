# shellcheck shell=sh
# OrionOS node functions, shared by the initramfs init and the node's
# services (the initramfs carries a copy of this file). POSIX sh, busybox.
#
# State of the boot, kept in /run/orion (moved into the running system):
#   node image http-servers report-servers paths.list primary http-port log-server
#   paths.missing  boot servers that gave no path at boot (orion-paths adds them later)
#   root-file root-sha256 nfs-export nfs-options   what orion-paths needs for that
#   phases        "<name> <seconds since the kernel started>" per boot phase
#   boot.log      every line the init and the node's services logged
#   result        ok, or failed: <reason>

ORION_RUN=/run/orion

# orion_arg NAME: the value of NAME=value on the kernel command line.
orion_arg() {
    read -r __orion_cmdline < /proc/cmdline
    for word in $__orion_cmdline; do
        case "$word" in "$1"=*) echo "${word#*=}"; return 0 ;; esac
    done
    return 1
}

# orion_log TAG MESSAGE...: to the console or service log, the boot log and syslog.
orion_log() {
    tag=$1
    shift
    echo "$tag: $*" >&2
    mkdir -p "$ORION_RUN"
    echo "$(orion_uptime) $tag: $*" >> "$ORION_RUN/boot.log"
    logger -t "$tag" -- "$*" 2>/dev/null
    return 0
}

orion_uptime() {
    cut -d' ' -f1 /proc/uptime
}

# orion_multipath_table PATHS: the device-mapper table of the root image over
# the loop devices in PATHS (paths.list: "MAJ:MIN LOOP SERVER ROLE RTT" per
# line), one path group per line in that order: reads go to the first group
# with a working path; with none, they wait (queue_if_no_path).
orion_multipath_table() {
    __orion_count=0
    __orion_groups=""
    while read -r __orion_dev _loop _server _role _rtt; do
        __orion_groups="$__orion_groups round-robin 0 1 1 $__orion_dev 1"
        __orion_count=$((__orion_count + 1))
    done < "$1"
    __orion_sectors=$(blockdev --getsz "$(awk 'NR == 1 { print $2 }' "$1")") || return 1
    echo "0 $__orion_sectors multipath 1 queue_if_no_path 0 $__orion_count 1$__orion_groups"
}

# orion_image_sha256 FILE: the sha256 of an image file on an NFS mount, read
# directly 1 MiB at a time (one NFS READ each; the page cache would read
# ahead 128 KiB at a time), and no further than its size (a read at the end
# of the file would be one more READ).
orion_image_sha256() {
    __orion_size=$(stat -c %s "$1") || return 1
    dd if="$1" bs=1M iflag=direct count=$(((__orion_size + 1048575) / 1048576)) 2> /dev/null |
        sha256sum | cut -d' ' -f1
}

# orion_phase NAME: record that a boot phase ended now.
orion_phase() {
    echo "$1 $(orion_uptime)" >> "$ORION_RUN/phases"
}

# orion_json STRING: STRING as a JSON string (quotes included).
orion_json() {
    printf '"%s"' "$(printf '%s' "$1" | tr -d '\000-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

orion_macs() {
    for dev in /sys/class/net/*; do
        [ "$(cat "$dev/type" 2>/dev/null)" = 1 ] && cat "$dev/address"
    done | sort -u
}

# orion_put SERVER URLPATH FILE: HTTP PUT of FILE; 0 when the server stored it.
orion_put() {
    port=$(cat "$ORION_RUN/http-port" 2>/dev/null || echo 80)
    length=$(wc -c < "$3")
    status=$({
        printf 'PUT %s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\n\r\n' \
            "$2" "$1" "$length"
        cat "$3"
    } | nc -w 5 "$1" "$port" 2>/dev/null | head -n 1)
    case "$status" in "HTTP/1."?" 20"[014]*) return 0 ;; esac
    return 1
}

# orion_report RESULT [REASON]: write the boot report and send it to every
# boot server (each keeps it under its image store's reports/).
orion_report() {
    result=$1
    reason=${2:-}
    node=$(cat "$ORION_RUN/node" 2>/dev/null)
    [ -n "$node" ] || return 1
    report="$ORION_RUN/report.json"
    {
        printf '{"format":1,"node":%s,"result":%s,"reason":%s,' \
            "$(orion_json "$node")" "$(orion_json "$result")" "$(orion_json "$reason")"
        printf '"image":%s,"fallback":%s,' "$(orion_json "$(cat "$ORION_RUN/image" 2>/dev/null)")" \
            "$([ "$(orion_arg orion.fallback)" = 1 ] && echo true || echo false)"
        # The boot's duration is fixed by the first report; later ones (a
        # path failed, came back or was added) keep it.
        [ -s "$ORION_RUN/boot-seconds" ] || orion_uptime > "$ORION_RUN/boot-seconds"
        printf '"boot_seconds":%s,"kernel":%s,' "$(cat "$ORION_RUN/boot-seconds")" "$(orion_json "$(uname -r)")"
        printf '"primary":%s,' "$(orion_json "$(cat "$ORION_RUN/primary" 2>/dev/null)")"
        printf '"macs":['
        sep=""
        for mac in $(orion_macs); do printf '%s%s' "$sep" "$(orion_json "$mac")"; sep=,; done
        printf '],"addresses":['
        sep=""
        for addr in $(ip -4 -o addr show scope global 2>/dev/null | awk '{print $4}'); do
            printf '%s%s' "$sep" "$(orion_json "$addr")"
            sep=,
        done
        printf '],"paths":['
        sep=""
        if [ -r "$ORION_RUN/paths.list" ]; then
            while read -r dev loop server role rtt; do
                state=$(orion_path_state "$dev")
                printf '%s{"server":%s,"device":%s,"loop":%s,"role":%s,"rtt_ms":%s,"state":%s}' "$sep" \
                    "$(orion_json "$server")" "$(orion_json "$dev")" "$(orion_json "$loop")" \
                    "$(orion_json "$role")" "$(orion_json "$rtt")" "$(orion_json "$state")"
                sep=,
            done < "$ORION_RUN/paths.list"
        fi
        printf '],"phases":{'
        sep=""
        if [ -r "$ORION_RUN/phases" ]; then
            while read -r phase at; do
                printf '%s%s:%s' "$sep" "$(orion_json "$phase")" "$at"
                sep=,
            done < "$ORION_RUN/phases"
        fi
        printf '}}\n'
    } > "$report.tmp" && mv "$report.tmp" "$report"
    sent=""
    servers=""
    [ -r "$ORION_RUN/report-servers" ] && read -r servers < "$ORION_RUN/report-servers"
    for server in $servers; do
        if orion_put "$server" "/reports/$node.json" "$report"; then
            sent="$sent $server"
        fi
    done
    if [ -n "$sent" ]; then
        orion_log orion-report "boot report ($result) sent to${sent}"
        return 0
    fi
    orion_log orion-report "boot report ($result) reached no boot server"
    return 1
}

# orion_path_state DEV: A (active) or F (failed) for a path of the root device.
orion_path_state() {
    orion-dm status orion-root 2>/dev/null | awk -v dev="$1" '
        { for (i = 1; i < NF; i++) if ($i == dev) { print $(i + 1); exit } }'
}
