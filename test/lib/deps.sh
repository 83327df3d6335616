# shellcheck shell=bash
# test/lib/deps.sh — system packages and the build, shared by test/run and other scripts.
#
#     install_deps     # apt-get the packages below (skipped when all are installed)
#     build_install    # make -j2 && make install against PostgreSQL 15 (PGXS)
#
# WAM_APT_PACKAGES is THE list of Debian packages the project needs: add new ones here.

WAM_APT_PACKAGES=(
    postgresql-15
    postgresql-server-dev-15
    libroaring-dev
    libcurl4-openssl-dev
    openssl
    gnuplot-nox
    build-essential
    clang
    libclang-rt-14-dev
    python3
    procps
    perl
    # to build Citus from the vendored archive for test/t/citus.sh (test/lib/citus.sh)
    libzstd-dev
    liblz4-dev
    libkrb5-dev
    libselinux1-dev
    libxslt1-dev
    libpam0g-dev
    libssl-dev
    libreadline-dev
)

WAM_PG_CONFIG=${WAM_PG_CONFIG:-/usr/lib/postgresql/15/bin/pg_config}
WAM_REPO_DIR=${WAM_REPO_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export WAM_PG_CONFIG WAM_REPO_DIR

_wam_pkg_installed() {
    dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed$'
}

install_deps() {
    local p missing=()
    for p in "${WAM_APT_PACKAGES[@]}"; do
        _wam_pkg_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        echo "all ${#WAM_APT_PACKAGES[@]} packages already installed: ${WAM_APT_PACKAGES[*]}"
        return 0
    fi
    echo "missing packages: ${missing[*]}"
    if [ "$(id -u)" -ne 0 ]; then
        echo "error: not root, cannot apt-get install; install them or run as root" >&2
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q || return 1
    # Install the whole list (not only the missing ones) so versions stay consistent.
    apt-get install -y -q --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${WAM_APT_PACKAGES[@]}" </dev/null || return 1
    for p in "${WAM_APT_PACKAGES[@]}"; do
        _wam_pkg_installed "$p" || { echo "error: package $p still not installed" >&2; return 1; }
    done
}

# Build and install the extension. Extra make arguments may be given (e.g. CFLAGS=...),
# or through WAM_MAKE_ARGS (word-split).
build_install() {
    local -a extra
    # shellcheck disable=SC2206  # deliberate word splitting of a user knob
    extra=(${WAM_MAKE_ARGS:-} "$@")
    make -C "$WAM_REPO_DIR" -j2 PG_CONFIG="$WAM_PG_CONFIG" "${extra[@]}" || return 1
    make -C "$WAM_REPO_DIR" install PG_CONFIG="$WAM_PG_CONFIG" "${extra[@]}" || return 1
}
