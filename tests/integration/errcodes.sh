#!/usr/bin/env bash
# errcodes.sh - the error-code registry (include/errcodes.h) is the one list
# of codes: every "E_..." literal in src/ is registered, each code once, the
# exit class registered is the one the call sites report with (err_input: 2,
# err_runtime: 1), and README.md and doc/p11enroll.1 document every code.
set -u
: "${SRCDIR:?set by meson}"
cd "$SRCDIR" || exit 1
PASSED=0 FAILED=0
ok() { PASSED=$((PASSED + 1)); echo "ok - $1"; }
not_ok() { FAILED=$((FAILED + 1)); echo "not ok - $1"; }

registry=$(grep -oE 'X\(E_[A-Z0-9_]+, [12],' include/errcodes.h | sed -E 's/X\((E_[A-Z0-9_]+), ([12]),/\1 \2/')
codes=$(awk '{print $1}' <<<"$registry")
[ "$(wc -l <<<"$codes")" -gt 50 ] && ok "registry parsed ($(wc -l <<<"$codes") codes)" || not_ok "registry parsed"

dups=$(sort <<<"$codes" | uniq -d)
[ -z "$dups" ] && ok "no code registered twice" || not_ok "registered twice: $dups"

used=$(grep -rhoE '"E_[A-Z0-9_]+"' src | tr -d '"' | sort -u)
missing=$(comm -23 <(echo "$used") <(sort <<<"$codes"))
[ -z "$missing" ] && ok "every code used in src/ is registered" \
    || not_ok "used in src/ but not in include/errcodes.h: $(echo $missing)"
unused=$(comm -13 <(echo "$used") <(sort <<<"$codes"))
[ -z "$unused" ] && ok "every registered code is used" \
    || not_ok "registered but never used: $(echo $unused)"

# The exit class: err_input("E_X" reports exit 2, err_runtime("E_X" exit 1.
bad=
while read -r code cls; do
    [ -z "$code" ] && continue
    in=$(grep -rhoE "err_input\(\"$code\"" src | wc -l)
    rt=$(grep -rhoE "err_runtime\(\"$code\"" src | wc -l)
    if [ "$cls" = 2 ] && [ "$rt" -gt 0 ]; then bad+=" $code(runtime)"; fi
    if [ "$cls" = 1 ] && [ "$in" -gt 0 ]; then bad+=" $code(input)"; fi
done <<<"$registry"
[ -z "$bad" ] && ok "call sites report each code with its registered exit class" \
    || not_ok "exit class differs from the registry:$bad"

for doc in README.md doc/p11enroll.1; do
    undoc=
    for c in $codes; do grep -q -- "$c" "$doc" || undoc+=" $c"; done
    [ -z "$undoc" ] && ok "$doc documents every code" || not_ok "$doc lacks:$undoc"
done

scripts/errcodes-doc --check && ok "README.md and doc/p11enroll.1 tables equal the registry" \
    || not_ok "README.md or doc/p11enroll.1 differ from include/errcodes.h (run scripts/errcodes-doc)"

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
