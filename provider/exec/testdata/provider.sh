#!/bin/sh
# A small credential issuer speaking rotor's exec protocol (version 2).
# Valid credentials are files in the directory given as $1; the answer to
# each mint request id is kept in $1/.requests, so that a mint repeated
# with the same request_id answers the same credential (the protocol's
# idempotent mint).
set -eu
dir=$1
req=$(cat)
field() { printf '%s' "$req" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
action=$(field action)
value=$(field value)
case $action in
mint)
	id=$(field request_id)
	mkdir -p "$dir/.requests"
	if [ -n "$id" ] && [ -f "$dir/.requests/$id" ]; then
		new=$(cat "$dir/.requests/$id")
	else
		new="ex_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
		: > "$dir/$new"
		[ -z "$id" ] || printf '%s' "$new" > "$dir/.requests/$id"
	fi
	printf '{"version":2,"value":"%s","meta":{"issuer":"provider.sh"}}\n' "$new"
	;;
test)
	if [ -n "$value" ] && [ -f "$dir/$value" ]; then
		echo '{"version":2}'
	else
		echo '{"version":2,"error":"unknown credential","rejected":true}'
	fi
	;;
revoke)
	rm -f "$dir/$value"
	echo '{"version":2}'
	;;
*)
	echo "unknown action" >&2
	exit 2
	;;
esac
