#!/bin/sh
# A small credential issuer speaking rotor's exec protocol (version 1).
# Valid credentials are files in the directory given as $1.
set -eu
dir=$1
req=$(cat)
field() { printf '%s' "$req" | sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
action=$(field action)
value=$(field value)
case $action in
mint)
	new="ex_$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
	: > "$dir/$new"
	printf '{"version":1,"value":"%s","meta":{"issuer":"provider.sh"}}\n' "$new"
	;;
test)
	if [ -n "$value" ] && [ -f "$dir/$value" ]; then
		echo '{"version":1}'
	else
		echo '{"version":1,"error":"unknown credential","rejected":true}'
	fi
	;;
revoke)
	rm -f "$dir/$value"
	echo '{"version":1}'
	;;
*)
	echo "unknown action" >&2
	exit 2
	;;
esac
