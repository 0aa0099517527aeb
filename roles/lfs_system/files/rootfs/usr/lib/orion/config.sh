# shellcheck shell=sh
# OrionOS per-node configuration, applied on every boot (the node keeps no
# state). The boot servers render one file per node, merged from the default,
# group and node files (roles/node_config); the init fetches it over HTTP,
# checks all of it, and only then applies it to the new root.
#
# Format, one directive per line, fields separated by single spaces:
#   orion-config 1
#   hostname NAME
#   user NAME UID HOME SHELL
#   key USER BASE64-OF-ONE-AUTHORIZED-KEYS-LINE
#   file PATH MODE OWNER GROUP BASE64-OF-CONTENT   ("-" for an empty file)
#   service NAME                                   (/etc/sv/NAME of the image)
#   sysctl KEY VALUE...
#   mount SOURCE TARGET FSTYPE OPTIONS
#   end SHA256-OF-EVERY-LINE-BEFORE-THIS-ONE
# Files go only where the root is writable (the RAM overlays): /etc, /var,
# /root, /home, /tmp; home directories only under /home. A user is a new
# account: its name and uid (1000 to 65533) are not the image's.

ORION_CONFIG_WRITABLE="/etc /var /root /home /tmp"

__orion_config_error() {
    echo "line $1: $2"
}

__orion_match() {
    printf '%s\n' "$1" | grep -qxE "$2"
}

__orion_writable_path() {
    __orion_match "$1" '(/[A-Za-z0-9._@+-]+)+' || return 1
    case "$1" in */../* | */.. | */./* | */.) return 1 ;; esac
    for area in $ORION_CONFIG_WRITABLE; do
        case "$1" in "$area"/*) return 0 ;; esac
    done
    return 1
}

__orion_b64() {
    [ "$1" = - ] && return 0
    printf '%s' "$1" | base64 -d > /dev/null 2>&1
}

# orion_config_check FILE ROOT: print every problem of FILE (none: valid).
orion_config_check() {
    file=$1
    root=$2
    last=$(tail -n 1 "$file")
    total=$(wc -l < "$file")
    case "$last" in
        "end "*)
            want=${last#end }
            have=$(head -n $((total - 1)) "$file" | sha256sum | cut -d' ' -f1)
            [ "$want" = "$have" ] || echo "the file is damaged: its sha256 is $have, its end line says $want"
            ;;
        *) echo "the file is incomplete: its last line is not 'end SHA256'" ;;
    esac
    users=" root "
    n=0
    set -f
    while IFS= read -r line; do
        n=$((n + 1))
        # shellcheck disable=SC2086
        set -- $line
        case "$n:$1" in
            1:orion-config) [ "$*" = "orion-config 1" ] || __orion_config_error $n "format '$*' is not 'orion-config 1'" ;;
            1:*) __orion_config_error $n "the first line is not 'orion-config 1'" ;;
            *:hostname)
                if [ $# != 2 ] || ! __orion_match "$2" '[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'; then
                    __orion_config_error $n "hostname '$2' is not a host name"
                fi ;;
            *:user)
                if [ $# != 5 ]; then
                    __orion_config_error $n "user needs NAME UID HOME SHELL"
                else
                    __orion_match "$2" '[a-z_][a-z0-9_-]{0,31}' || __orion_config_error $n "user name '$2' is not valid"
                    if ! __orion_match "$3" '[1-9][0-9]{3,4}' || [ "$3" -ge 65534 ]; then
                        __orion_config_error $n "uid '$3' of user $2 is not a number from 1000 to 65533"
                    elif awk -F: -v uid="$3" '$3 == uid { found = 1 } END { exit !found }' "$root/etc/passwd"; then
                        __orion_config_error $n "uid '$3' of user $2 is an account of the image"
                    fi
                    grep -q "^$2:" "$root/etc/passwd" && __orion_config_error $n "user $2 is an account of the image"
                    case "$4" in
                        /home/*) __orion_writable_path "$4" || __orion_config_error $n "home '$4' of user $2 is not a directory under /home/" ;;
                        *) __orion_config_error $n "home '$4' of user $2 is not a directory under /home/" ;;
                    esac
                    [ -x "$root$5" ] || __orion_config_error $n "shell '$5' of user $2 is not in the image"
                    users="$users$2 "
                fi ;;
            *:key)
                [ $# = 3 ] || { __orion_config_error $n "key needs USER BASE64"; continue; }
                case "$users" in *" $2 "*) ;; *) __orion_config_error $n "key for user '$2', who is not defined before it" ;; esac
                __orion_b64 "$3" || __orion_config_error $n "key of user $2 is not base64" ;;
            *:file)
                [ $# = 6 ] || { __orion_config_error $n "file needs PATH MODE OWNER GROUP BASE64"; continue; }
                __orion_writable_path "$2" || __orion_config_error $n "file '$2' is not in a writable area ($ORION_CONFIG_WRITABLE)"
                __orion_match "$3" '0?[0-7]{3,4}' || __orion_config_error $n "mode '$3' of file $2 is not octal"
                case "$users" in *" $4 "*) ;; *) grep -q "^$4:" "$root/etc/passwd" || __orion_config_error $n "owner '$4' of file $2 is not a user" ;; esac
                case "$users" in *" $5 "*) ;; *) grep -q "^$5:" "$root/etc/group" || __orion_config_error $n "group '$5' of file $2 is not a group" ;; esac
                __orion_b64 "$6" || __orion_config_error $n "content of file $2 is not base64" ;;
            *:service)
                if [ $# != 2 ] || ! __orion_match "$2" '[A-Za-z0-9._-]+' || [ ! -d "$root/etc/sv/$2" ]; then
                    __orion_config_error $n "service '$2' is not in the image (/etc/sv)"
                fi ;;
            *:sysctl)
                if [ $# -lt 3 ] || ! __orion_match "$2" '[a-z0-9_]+(\.[a-z0-9_-]+)+' \
                        || [ ! -w "/proc/sys/$(echo "$2" | tr . /)" ]; then
                    __orion_config_error $n "sysctl '$2' does not exist on this kernel"
                fi ;;
            *:mount)
                [ $# = 5 ] || { __orion_config_error $n "mount needs SOURCE TARGET FSTYPE OPTIONS"; continue; }
                __orion_writable_path "$3" || __orion_config_error $n "mount point '$3' is not in a writable area"
                case "$4" in nfs | nfs4 | tmpfs) ;; *) __orion_config_error $n "file system type '$4' of mount $3 is not nfs, nfs4 or tmpfs" ;; esac ;;
            *:end) [ "$n" = "$total" ] || __orion_config_error $n "'end' before the last line" ;;
            *:) __orion_config_error $n "empty line" ;;
            *) __orion_config_error $n "unknown directive '$1'" ;;
        esac
    done < "$file"
    set +f
}

__orion_id() {
    awk -F: -v name="$2" '$1 == name { print $3; exit }' "$1"
}

# orion_config_apply FILE ROOT: apply a checked file to the new root.
orion_config_apply() {
    file=$1
    root=$2
    set -f
    while IFS= read -r line; do
        # shellcheck disable=SC2086
        set -- $line
        case "$1" in
            hostname)
                echo "$2" > "$root/etc/hostname" ;;
            user)
                grep -q "^$2:" "$root/etc/passwd" || {
                    echo "$2:x:$3:$3::$4:$5" >> "$root/etc/passwd"
                    echo "$2:*:0:0:99999:7:::" >> "$root/etc/shadow"
                    grep -q "^$2:" "$root/etc/group" || echo "$2:x:$3:" >> "$root/etc/group"
                }
                mkdir -p "$root$4"
                chown "$3:$3" "$root$4"
                chmod 0700 "$root$4" ;;
            key)
                home=$(awk -F: -v name="$2" '$1 == name { print $6; exit }' "$root/etc/passwd")
                uid=$(__orion_id "$root/etc/passwd" "$2")
                mkdir -p "$root$home/.ssh"
                printf '%s' "$3" | base64 -d >> "$root$home/.ssh/authorized_keys"
                echo >> "$root$home/.ssh/authorized_keys"
                chmod 0700 "$root$home/.ssh"
                chmod 0600 "$root$home/.ssh/authorized_keys"
                chown -R "$uid:$uid" "$root$home/.ssh" ;;
            file)
                mkdir -p "$root$(dirname "$2")"
                if [ "$6" = - ]; then : > "$root$2"; else printf '%s' "$6" | base64 -d > "$root$2"; fi
                chown "$(__orion_id "$root/etc/passwd" "$4"):$(__orion_id "$root/etc/group" "$5")" "$root$2"
                chmod "$3" "$root$2" ;;
            service)
                ln -sfn "/etc/sv/$2" "$root/etc/service/$2" ;;
            sysctl)
                key=$2
                shift 2
                echo "$*" > "/proc/sys/$(echo "$key" | tr . /)" || return 1 ;;
            mount)
                mkdir -p "$root$3"
                mount -t "$4" -o "$5" "$2" "$root$3" || return 1 ;;
        esac
    done < "$file"
    set +f
    return 0
}
