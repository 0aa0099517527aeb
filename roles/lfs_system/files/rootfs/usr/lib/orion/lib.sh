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
#   previous.json what the boot servers knew of the previous boot (orion_previous)
#   shutdown-action  reboot, poweroff or halt, as asked (orion_shutdown_request)
#   shutdown      the shutdown stage runs: no more boot reports

ORION_RUN=/run/orion

# orion_arg NAME: the value of NAME=value on the kernel command line.
orion_arg() {
    read -r __orion_cmdline < /proc/cmdline
    for word in $__orion_cmdline; do
        case "$word" in "$1"=*) echo "${word#*=}"; return 0 ;; esac
    done
    return 1
}

# orion_watchdog_arm SECONDS: arm the watchdog (/dev/watchdog) so that it
# resets the machine SECONDS from now unless orion_watchdog_disarm stops it
# first. busybox's watchdog sets the timeout and pings once; killed without
# the magic close, it leaves the card running with nobody to ping it. The
# timeout is read back: a card that did not take it is stopped again (its
# default could be shorter than a boot). Prints why it did not arm; status 1.
orion_watchdog_arm() {
    [ -c /dev/watchdog ] || { echo "no watchdog device"; return 1; }
    watchdog -F -T "$1" -t 86400 /dev/watchdog 2>/dev/null &
    __orion_wd=$!
    sleep 1
    kill -9 "$__orion_wd" 2>/dev/null
    wait "$__orion_wd" 2>/dev/null
    __orion_wd_timeout=$(cat /sys/class/watchdog/watchdog0/timeout 2>/dev/null)
    if [ "$__orion_wd_timeout" != "$1" ]; then
        orion_watchdog_disarm
        echo "the watchdog took a timeout of ${__orion_wd_timeout:-unknown} s, not $1 s: left stopped"
        return 1
    fi
    return 0
}

# orion_watchdog_disarm: stop the watchdog (the magic close); nothing when none runs.
orion_watchdog_disarm() {
    [ -c /dev/watchdog ] || return 0
    [ "$(cat /sys/class/watchdog/watchdog0/state 2>/dev/null)" = active ] || return 0
    printf V > /dev/watchdog 2>/dev/null
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
# boot server (each keeps it under its image store's reports/). The first
# report of a boot first asks the servers how the previous boot ended
# (orion_previous); once the shutdown stage runs, no boot report goes out.
orion_report() {
    [ -e "$ORION_RUN/shutdown" ] && return 1
    [ -s "$ORION_RUN/previous.json" ] || orion_previous > /dev/null
    __orion_report "$1" "${2:-}" boot "\"previous\":$(cat "$ORION_RUN/previous.json" 2>/dev/null ||
        echo '{"end":"unknown"}'),"
}

# orion_shutdown_report ACTION [REASON]: the last report of a boot, the
# boot report's fields with event shutdown, ACTION (reboot, poweroff, halt)
# and result shutdown, sent to the same place.
orion_shutdown_report() {
    __orion_report shutdown "${2:-}" shutdown "\"action\":$(orion_json "$1"),"
}

orion_boot_id() {
    cat /proc/sys/kernel/random/boot_id 2>/dev/null
}

# __orion_report RESULT REASON EVENT FIELDS: write and send a report (FIELDS:
# more JSON members, each followed by a comma).
__orion_report() {
    result=$1
    reason=$2
    node=$(cat "$ORION_RUN/node" 2>/dev/null)
    [ -n "$node" ] || return 1
    report="$ORION_RUN/report.json"
    {
        printf '{"format":1,"node":%s,"event":%s,"boot_id":%s,%s' "$(orion_json "$node")" "$(orion_json "$3")" \
            "$(orion_json "$(orion_boot_id)")" "$4"
        printf '"result":%s,"reason":%s,' "$(orion_json "$result")" "$(orion_json "$reason")"
        printf '"image":%s,"fallback":%s,' "$(orion_json "$(cat "$ORION_RUN/image" 2>/dev/null)")" \
            "$([ "$(orion_arg orion.fallback)" = 1 ] && echo true || echo false)"
        # The boot service's attempt id of this boot (none for a static script).
        printf '"attempt":%s,' "$(orion_json "$(orion_arg orion.attempt)")"
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
        orion_log orion-report "$3 report ($result) sent to${sent}"
        return 0
    fi
    orion_log orion-report "$3 report ($result) reached no boot server"
    return 1
}

# orion_get SERVER URLPATH FILE: HTTP GET into FILE (the body, at most 64 KiB);
# 0 when the server sent it (200), 1 when it answered otherwise, 2 when it did not answer.
orion_get() {
    port=$(cat "$ORION_RUN/http-port" 2>/dev/null || echo 80)
    printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$2" "$1" | nc -w 5 "$1" "$port" 2>/dev/null |
        head -c 70000 > "$3.http"
    status=$(head -n 1 "$3.http")
    # The body: what follows the first empty line (a cut answer does not parse).
    awk 'body { print; next } /^\r?$/ { body = 1 }' "$3.http" > "$3"
    rm -f "$3.http"
    case "$status" in
        "HTTP/1."?" 200"*) [ "$(wc -c < "$3")" -le 65537 ] && return 0; return 1 ;;
        "HTTP/1."*) return 1 ;;
    esac
    return 2
}

# orion_json_fields FILE: "KEY<tab>VALUE" for each member of the JSON object
# in FILE whose value is a string, a number, true, false or null, both as
# written (strings with their quotes and escapes); nested objects and arrays
# are checked and skipped. Non-zero, printing nothing, when FILE is not one
# well-formed JSON object (any content: it comes from the network).
orion_json_fields() {
    # awk strings end at a NUL byte: a file with one is refused here.
    [ "$(tr -d '\000' < "$1" | wc -c)" = "$(wc -c < "$1")" ] || return 1
    awk '
    function ws() { while (i <= n && index(" \t\n\r", substr(text, i, 1))) i++ }
    function str(   start, c) {
        start = i
        i++
        while (i <= n) {
            c = substr(text, i, 1)
            if (c == "\"") { i++; return substr(text, start, i - start) }
            if (index(ctl, c)) return ""
            if (c == "\\") {
                c = substr(text, i + 1, 1)
                if (c == "u") {
                    if (substr(text, i + 2, 4) !~ /^[0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f][0-9A-Fa-f]$/) return ""
                    i += 6
                    continue
                }
                if (c == "" || index("\"\\/bfnrt", c) == 0) return ""
                i += 2
                continue
            }
            i++
        }
        return ""
    }
    # value(DEPTH): the type of the value at i (s, o, a or l; "" when it is
    # malformed), its text in tok for a string or a literal.
    function value(depth,   c) {
        ws()
        c = substr(text, i, 1)
        if (c == "\"") { tok = str(); return tok == "" ? "" : "s" }
        if (c == "{") return object(depth + 1) ? "o" : ""
        if (c == "[") return array(depth + 1) ? "a" : ""
        if (match(substr(text, i, 64), /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?/) ||
            match(substr(text, i, 5), /^(true|false|null)/)) {
            tok = substr(text, i, RLENGTH)
            i += RLENGTH
            c = substr(text, i, 1)
            # A number or word runs on into something else: malformed.
            if (c != "" && index(" \t\n\r,]}", c) == 0) return ""
            return "l"
        }
        return ""
    }
    function object(depth,   key, type, c) {
        if (depth > 32) return 0
        i++
        ws()
        if (substr(text, i, 1) == "}") { i++; return 1 }
        while (1) {
            ws()
            if (substr(text, i, 1) != "\"") return 0
            key = str()
            if (key == "") return 0
            ws()
            if (substr(text, i, 1) != ":") return 0
            i++
            type = value(depth)
            if (type == "") return 0
            if (depth == 1 && (type == "s" || type == "l")) {
                if (!(key in fields)) order[++count] = key
                fields[key] = tok
            }
            ws()
            c = substr(text, i, 1)
            i++
            if (c == "}") return 1
            if (c != ",") return 0
        }
    }
    function array(depth,   c) {
        if (depth > 32) return 0
        i++
        ws()
        if (substr(text, i, 1) == "]") { i++; return 1 }
        while (1) {
            if (value(depth) == "") return 0
            ws()
            c = substr(text, i, 1)
            i++
            if (c == "]") return 1
            if (c != ",") return 0
        }
    }
    BEGIN { for (k = 1; k < 32; k++) ctl = ctl sprintf("%c", k) }
    { text = text $0 "\n" }
    END {
        n = length(text)
        i = 1
        ws()
        if (substr(text, i, 1) != "{" || !object(1)) exit 1
        ws()
        if (i <= n) exit 1
        for (k = 1; k <= count; k++) printf "%s\t%s\n", order[k], fields[order[k]]
    }' "$1"
}

# __orion_field FIELDS KEY: the value of "KEY" in orion_json_fields output,
# when it is a plain string (letters, digits and ._:+@-), else nothing.
__orion_field() {
    printf '%s\n' "$1" | awk -F '\t' -v key="\"$2\"" '
        $1 == key && $2 ~ /^"[A-Za-z0-9._:+@-]*"$/ { print $2; exit }'
}

# orion_previous: how the previous boot of this node ended, as a JSON object
# (printed, and kept in previous.json once a server answered), from the
# node's last report on the boot servers (GET /reports/<node>.json, which
# they answer to the node's own address):
#   {"end":"clean","action":...,"image":...,"boot_id":...,"server":...}
#       the last report is a shutdown report (the shutdown stage ran)
#   {"end":"unclean","image":...,"boot_id":...,"server":...}
#       the last report is a boot report: the node never said it went down
#   {"end":"unknown"}  no server has a report that parses (or none answered)
# A shutdown report wins over a boot report of the same boot (a server that
# was down while the node went down still holds its boot report); otherwise
# the first server in order that has one. A report without an event (an
# image from before shutdown reports) tells nothing: unknown.
orion_previous() {
    __op_node=$(cat "$ORION_RUN/node" 2>/dev/null)
    __op_servers=""
    [ -r "$ORION_RUN/report-servers" ] && read -r __op_servers < "$ORION_RUN/report-servers"
    __op_answered=""
    __op_best=""
    __op_best_event=""
    __op_best_boot=""
    __op_body="$ORION_RUN/previous.body"
    for __op_server in $__op_servers; do
        orion_get "$__op_server" "/reports/$__op_node.json" "$__op_body"
        case $? in
            0) __op_answered=yes ;;
            1) __op_answered=yes; continue ;;
            *) continue ;;
        esac
        __op_fields=$(orion_json_fields "$__op_body") || continue
        __op_event=$(__orion_field "$__op_fields" event)
        __op_boot=$(__orion_field "$__op_fields" boot_id)
        case "$__op_event" in '"shutdown"' | '"boot"') ;; *) continue ;; esac
        if [ -z "$__op_best" ] || { [ "$__op_best_event" = '"boot"' ] && [ "$__op_event" = '"shutdown"' ] &&
                [ "$__op_boot" = "$__op_best_boot" ]; }; then
            __op_end=unclean
            [ "$__op_event" = '"shutdown"' ] && __op_end=clean
            __op_action=$(__orion_field "$__op_fields" action)
            __op_image=$(__orion_field "$__op_fields" image)
            __op_best="{\"end\":\"$__op_end\",${__op_action:+\"action\":$__op_action,}\"image\":${__op_image:-\"\"},"
            __op_best="$__op_best\"boot_id\":${__op_boot:-\"\"},\"server\":$(orion_json "$__op_server")}"
            __op_best_event=$__op_event
            __op_best_boot=$__op_boot
        fi
    done
    rm -f "$__op_body"
    [ -n "$__op_best" ] || __op_best='{"end":"unknown"}'
    [ -n "$__op_answered" ] && echo "$__op_best" > "$ORION_RUN/previous.json"
    echo "$__op_best"
}

# orion_busybox: the root's BusyBox (the minimal profile's /bin/busybox, the
# lfs profile's /usr/lib/orion/busybox, where only some applets are linked).
orion_busybox() {
    for __orion_bb in /bin/busybox /usr/lib/orion/busybox; do
        [ -x "$__orion_bb" ] && { echo "$__orion_bb"; return 0; }
    done
    return 1
}

# orion_shutdown_request ACTION ARGS...: what reboot, poweroff and halt run:
# the action is kept for the shutdown stage (PID 1 runs it and cannot tell
# which signal asked), then BusyBox's applet signals PID 1 (with -f, it does
# it at once, without the shutdown stage).
orion_shutdown_request() {
    __orion_action=$1
    shift
    __orion_bb=$(orion_busybox) || { echo "$__orion_action: no BusyBox on this root" >&2; return 1; }
    mkdir -p "$ORION_RUN" && echo "$__orion_action" > "$ORION_RUN/shutdown-action"
    exec "$__orion_bb" "$__orion_action" "$@"
}

# orion_bounded SECONDS COMMAND...: run COMMAND, but wait for it no longer
# than SECONDS (a command stuck on a dead NFS server is killed, or left
# behind if it cannot be); its status, or 124 when it did not end in time.
orion_bounded() {
    __orion_ticks=$(($1 * 5))
    shift
    "$@" &
    __orion_pid=$!
    while __orion_alive "$__orion_pid"; do
        if [ "$__orion_ticks" -le 0 ]; then
            kill -KILL "$__orion_pid" 2>/dev/null
            return 124
        fi
        __orion_ticks=$((__orion_ticks - 1))
        sleep 0.2
    done
    wait "$__orion_pid"
}

# __orion_alive PID: the process runs (is not gone, nor a zombie).
__orion_alive() {
    { read -r __orion_stat < "/proc/$1/stat"; } 2>/dev/null || return 1
    case "${__orion_stat##*") "}" in Z*) return 1 ;; esac
    return 0
}

# orion_path_state DEV: A (active) or F (failed) for a path of the root device.
orion_path_state() {
    orion-dm status orion-root 2>/dev/null | awk -v dev="$1" '
        { for (i = 1; i < NF; i++) if ($i == dev) { print $(i + 1); exit } }'
}
