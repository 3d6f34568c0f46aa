#!/usr/bin/env bash
# Static checks of the appliance image sources (systemd/, rootfs/, yocto/, hw-tests/, scripts/).
# None of them can pass by accident: each fails on any finding, not only on a non-zero exit.
#
#   scripts/check-image.sh            run every check; exit 1 if any failed
#   scripts/check-image.sh NAME...    run only the named checks (see CHECKS below)
#   scripts/check-image.sh --fix ...  first regenerate the generated files (crate list from
#                                     Cargo.lock, nftables ruleset + capability drop-in from
#                                     config.toml), then check
#
# Installs what it needs, idempotently: shellcheck and nftables (apt), and oelint-adv, kas,
# jsonschema, pytest (pip) into $ROOT/.venv if it exists, else $ROOT/.venv-image.
# Checks:
#   units        systemd-analyze verify over systemd/ (with drop-ins), any output = failure.
#                Exec*= paths that do not exist on this machine (/usr/bin/rms-edge, rauc, ...)
#                are pointed at a stand-in executable in a temporary copy of the unit.
#   security     systemd-analyze security --offline=true --threshold=20 for rms-edge.service with
#                its drop-ins (exposure <= 2.0)
#   sysusers     sysusers.d + tmpfiles.d applied to an empty root, any warning = failure
#   generated    yocto/scripts/gen-ports-config.py --check (nftables ruleset + capability drop-in
#                match config.toml) and nft -c of the ruleset
#   crates       yocto/scripts/gen-crates-inc.py --check (rms-edge-crates.inc matches Cargo.lock)
#   oelint       oelint-adv --release scarthgap over meta-rms-edge and meta-rms-edge-ci, no finding
#   kas          every yocto/kas/**/*.yml valid against kas's schema-kas.json
#   grub         grub-script-check of the A/B boot script (grub.cfg)
#   shell        shellcheck over the shell scripts of the image
#   hwtests      hw-tests collect and skip cleanly without a target
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 2
CHECKS=(units security sysusers generated crates oelint kas grub shell hwtests)
if [ "${1:-}" = "--fix" ]; then
  shift
  python3 yocto/scripts/gen-crates-inc.py || exit 1
  python3 yocto/scripts/gen-ports-config.py || exit 1
fi
[ $# -gt 0 ] && CHECKS=("$@")

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
passed=0; failed=0; failures=()

# -- tools ----------------------------------------------------------------------------------------
apt_need() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "check-image: installing ${missing[*]} (apt)"
  if [ "$(id -u)" = 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}" >/dev/null \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
           install -y -q "${missing[@]}" >/dev/null; }
  else
    echo "check-image: not root: install ${missing[*]} yourself" >&2
  fi
}

PIP_PINS=(oelint-adv==9.11.2 oelint-parser==8.13.2 oelint-data==1.5.26 kas==5.5 jsonschema pytest pyyaml)
venv_ready=0
venv() {
  [ "$venv_ready" = 1 ] && return 0
  if [ -x "$ROOT/.venv/bin/python" ]; then VENV="$ROOT/.venv"; else VENV="$ROOT/.venv-image"; fi
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  if ! "$VENV/bin/python" - "${PIP_PINS[@]}" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, _, want = spec.partition("==")
    try:
        have = version(name)
    except PackageNotFoundError:
        sys.exit(1)
    if want and have != want:
        sys.exit(1)
EOF
  then
    echo "check-image: installing ${PIP_PINS[*]} into $VENV"
    "$VENV/bin/pip" install -q "${PIP_PINS[@]}" || return 1
  fi
  venv_ready=1
}

run() {  # run NAME FUNCTION: PASS/FAIL line, output shown on failure
  local name="$1"; shift
  local log="$TMP/$name.log"
  if "$@" >"$log" 2>&1; then
    passed=$((passed + 1)); echo "PASS $name"
    sed 's/^/     /' "$log" | grep -E '^\s+(exposure|note|info):' || true
  else
    failed=$((failed + 1)); failures+=("$name"); echo "FAIL $name"
    sed 's/^/     /' "$log"
  fi
}

# -- checks ---------------------------------------------------------------------------------------
stub_exec_paths() {  # rewrite Exec*= paths missing on this host to a stand-in, in place
  local dir="$1" f line path
  mkdir -p "$TMP/standin-bin"
  for f in "$dir"/*.service; do
    while IFS= read -r line; do
      path="$(printf '%s\n' "$line" | sed -E 's/^Exec[A-Za-z]*=[-@:+!]*([^ ]+).*/\1/')"
      case "$path" in /*) ;; *) continue ;; esac
      [ -x "$path" ] && continue
      local stub
      stub="$TMP/standin-bin/$(basename "$path")"
      printf '#!/bin/sh\nexit 0\n' > "$stub"; chmod +x "$stub"
      sed -i "s#=\([-@:+!]*\)$path#=\1$stub#" "$f"
      echo "note: $(basename "$f"): $path is not on this machine; verified with a stand-in executable"
    done < <(grep -E '^Exec[A-Za-z]*=' "$f")
  done
}

check_units() {
  local d="$TMP/units" out
  mkdir -p "$d"
  cp systemd/*.service systemd/*.mount "$d/"
  cp -r systemd/rms-edge.service.d "$d/"
  stub_exec_paths "$d"
  out="$(cd "$d" && systemd-analyze verify ./*.service ./*.mount 2>&1)"; local rc=$?
  # The test-only drop-ins (systemd/dev/) verified on top of the production unit.
  local dd="$TMP/units-dev"
  mkdir -p "$dd"; cp "$d/rms-edge.service" "$dd/"; cp -r "$d/rms-edge.service.d" "$dd/"
  cp systemd/dev/rms-edge.service.d/*.conf "$dd/rms-edge.service.d/"
  local out2
  out2="$(cd "$dd" && systemd-analyze verify ./rms-edge.service 2>&1)"; rc=$((rc + $?))
  out="$(printf '%s\n%s' "$out" "$out2" | sed '/^$/d')"
  [ -n "$out" ] && printf '%s\n' "$out"
  [ $rc -eq 0 ] && [ -z "$out" ]
}

check_security() {
  local r="$TMP/secroot"
  mkdir -p "$r/etc/systemd/system"
  cp systemd/rms-edge.service "$r/etc/systemd/system/"
  cp -r systemd/rms-edge.service.d "$r/etc/systemd/system/"
  local out
  out="$(systemd-analyze security --offline=true --threshold=20 --root="$r" --no-pager rms-edge.service 2>&1)"
  local rc=$?
  local overall
  overall="$(printf '%s\n' "$out" | grep -E 'Overall exposure level' | sed 's/^→ *//')"
  [ $rc -eq 0 ] || printf '%s\n' "$out"
  echo "exposure: ${overall:-unknown} (threshold 2.0, with drop-ins: $(cd systemd/rms-edge.service.d && echo *.conf))"
  [ $rc -eq 0 ] && [ -n "$overall" ]
}

check_sysusers() {
  local r="$TMP/sysroot" out
  mkdir -p "$r/etc" "$r/data" "$r/usr/lib/sysusers.d" "$r/usr/lib/tmpfiles.d"
  : > "$r/etc/passwd"; : > "$r/etc/group"; : > "$r/etc/shadow"; : > "$r/etc/gshadow"
  cp rootfs/usr/lib/sysusers.d/rms-edge.conf "$r/usr/lib/sysusers.d/"
  cp rootfs/usr/lib/tmpfiles.d/rms-edge.conf "$r/usr/lib/tmpfiles.d/"
  out="$(systemd-sysusers --root="$r" 2>&1 | grep -vE '^Creating (group|user) ')"
  out="$(printf '%s\n%s' "$out" "$(systemd-tmpfiles --root="$r" --create 2>&1)" | sed '/^$/d')"
  [ -n "$out" ] && printf '%s\n' "$out"
  local uid
  uid="$(awk -F: '$1 == "rms-edge" {print $3}' "$r/etc/passwd")"
  echo "note: rms-edge uid ${uid:-missing}; /data/rms-edge $(stat -c %u:%a "$r/data/rms-edge" 2>&1)"
  [ -z "$out" ] && [ -n "$uid" ] && [ "$(stat -c %u:%a "$r/data/rms-edge")" = "$uid:750" ]
}

check_generated() {
  python3 yocto/scripts/gen-ports-config.py --check || return 1
  if command -v nft >/dev/null && [ "$(id -u)" = 0 ]; then
    nft -c -f rootfs/etc/rms-edge/nftables.conf || return 1
  else
    echo "note: nft -c skipped (needs nft and root)"
  fi
}

check_crates() { python3 yocto/scripts/gen-crates-inc.py --check; }

check_oelint() {
  venv || return 1
  local files out
  mapfile -t files < <(find yocto/meta-rms-edge yocto/meta-rms-edge-ci \
    \( -name '*.bb' -o -name '*.bbappend' -o -name '*.inc' -o -name '*.conf' \) | sort)
  # homepageping needs the internet (the CI machine has none): suppressed, nothing else is.
  out="$("$VENV/bin/oelint-adv" --quiet --release scarthgap --relpaths \
    --suppress oelint.vars.homepageping --constantmods +yocto/oelint-constants.json \
    --extra-layer rauc intel multimedia-layer networking-layer openembedded-layer -- "${files[@]}" 2>&1)"
  local rc=$?
  [ -n "$out" ] && printf '%s\n' "$out"
  echo "note: ${#files[@]} layer files linted"
  [ $rc -eq 0 ] && [ -z "$out" ]
}

check_kas() {
  venv || return 1
  "$VENV/bin/python" - <<'EOF'
import glob, json, os, sys
import jsonschema, kas, yaml
schema = json.load(open(os.path.join(os.path.dirname(kas.__file__), "schema-kas.json")))
validator = jsonschema.Draft7Validator(schema)
bad = 0
files = sorted(glob.glob("yocto/kas/**/*.yml", recursive=True))
for f in files:
    doc = yaml.safe_load(open(f))
    for e in validator.iter_errors(doc):
        bad += 1
        print(f"{f}: {'/'.join(map(str, e.path))}: {e.message}")
    for r, spec in (doc.get("repos") or {}).items():
        if spec and spec.get("url") and not spec.get("commit"):
            bad += 1
            print(f"{f}: repo {r} is not pinned to a commit")
    for inc in (doc.get("header", {}).get("includes") or []):
        if isinstance(inc, str) and not os.path.exists(inc):
            bad += 1
            print(f"{f}: include {inc} does not exist")
print(f"note: {len(files)} kas files against kas {kas.__version__} schema")
sys.exit(1 if bad or not files else 0)
EOF
}

check_grub() {
  apt_need grub-common
  grub-script-check yocto/meta-rms-edge/dynamic-layers/rauc/recipes-bsp/rms-edge-boot/files/grub.cfg
}

check_shell() {
  apt_need shellcheck
  shellcheck scripts/check-image.sh scripts/dev-image/*.sh rootfs/usr/libexec/rms-edge/healthcheck
}

check_hwtests() {
  venv || return 1
  local out
  out="$("$VENV/bin/python" -m pytest hw-tests -q -p no:cacheprovider 2>&1)"; local rc=$?
  printf '%s\n' "$out" | tail -3
  # Without --target every test must skip (exit 0), none may error at collection.
  [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -qE '^[0-9]+ skipped'
}

apt_need nftables shellcheck grub-common
for c in "${CHECKS[@]}"; do run "$c" "check_$c"; done
echo "check-image: ${passed} passed, ${failed} failed${failures[*]:+ (${failures[*]})}"
[ "$failed" -eq 0 ]
