# Debian's keyctl client in a fresh session keyring (conformance12.rs):
# add, print, rdescribe, newring, link, show, unlink, timeout, revoke,
# request and request2 (a failed construction leaves a negative key).
# Serials are random: show's lines are normalised and sorted (a keyring's
# order is its own on Linux).
keyctl session - sh -c '
norm() { sed -E "s/[0-9]+/N/g; s/ +/ /g; s/^ //" | sort; }
k=$(keyctl add user conf12 hello @s); echo "add: $?"
keyctl print $k
keyctl rdescribe $k
r=$(keyctl newring ring @s); echo "newring: $?"
keyctl link $k $r; echo "link: $?"
keyctl show @s | norm
keyctl unlink $k $r
keyctl rdescribe $r
keyctl timeout $k 100; echo "timeout: $?"
keyctl revoke $k; echo "revoke: $?"
keyctl print $k; echo "print revoked: $?"
keyctl request user conf12:missing; echo "request: $?"
keyctl request2 user conf12:missing2 info; echo "request2: $?"
keyctl request user conf12:missing2; echo "request after: $?"
keyctl show @s | norm
' 2>&1 | sed -E 's/^(Joined session keyring:).*/\1/'
