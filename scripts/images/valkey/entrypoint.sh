#!/bin/sh
# Entrypoint of the local Valkey test image, following the official valkey image:
# data in /data, `valkey-server` as the default command, options passed through.
set -eu

if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- valkey-server "$@"
fi

if [ "$1" = valkey-server ]; then
    case " $* " in
        *" --protected-mode "*) ;;
        *) set -- "$@" --protected-mode no ;;
    esac
fi

if [ "$(id -u)" = 0 ] && [ "$1" = valkey-server ]; then
    chown -R valkey:valkey /data
    exec setpriv --reuid=valkey --regid=valkey --init-groups "$@"
fi
exec "$@"
