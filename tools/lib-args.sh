# Sourced by tools/run-burst.sh and tools/run-cluster.sh: the options they share.
#   kl_args PROG HELP_LAST_LINE "$@"
# sets ues, window, out and build (the caller sets their defaults first) from --ues N,
# --window S, --out DIR and --build DIR; -h/--help prints the caller's header comment (lines
# 2..HELP_LAST_LINE) and exits 0; any other argument goes to the caller's kl_flag (it returns
# non-zero for one it does not know: exit 2). Then checks --ues: 1..10,000,000.
kl_args() {
	local prog=$1 help=$2
	shift 2
	while [ $# -gt 0 ]; do
		case "$1" in
		--ues) ues=$2; shift 2 ;;
		--window) window=$2; shift 2 ;;
		--out) out=$2; shift 2 ;;
		--build) build=$2; shift 2 ;;
		-h|--help) sed -n "2,${help}p" "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
		*) kl_flag "$1" || { echo "$prog: unknown argument $1 (see --help)" >&2; exit 2; }
		   shift ;;
		esac
	done
	case "$ues" in ''|*[!0-9]*) echo "$prog: --ues wants a number" >&2; exit 2 ;; esac
	[ "$ues" -ge 1 ] && [ "$ues" -le 10000000 ] || { echo "$prog: --ues 1..10000000" >&2; exit 2; }
}
