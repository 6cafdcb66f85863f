# Debian's keyctl asks for keys /sbin/request-key constructs
# (keys_upcall.rs): request2 of a "debug:" key (request-key-debug.sh
# instantiates "Debug <callout>"), print and describe it; one no rule
# matches (ENOKEY); a helper-negated one. Descriptions carry the shell's
# pid (native runs share the host's keys); serials are normalised.
keyctl session - sh -c '
d=$$
k=$(keyctl request2 user debug:hello$d callout @s); echo "request2: $?"
keyctl print $k; echo "print: $?"
keyctl rdescribe $k | sed -E "s/hello[0-9]+/helloP/"
keyctl request user debug:hello$d >/dev/null; echo "request: $?"
keyctl request2 user upcall-nomatch:$d callout @s; echo "nomatch: $?"
keyctl request2 user debug:neg$d neg @s; echo "neg: $?"
keyctl instantiate $k data @s; echo "instantiate: $?"
keyctl show @s | sed -E "s/[0-9]+/N/g; s/ +/ /g; s/^ //" | sort
' 2>&1 | sed -E 's/^(Joined session keyring:).*/\1/'
