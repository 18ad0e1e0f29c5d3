# Sourced by scripts/demo.sh and scripts/test.sh: a pinned Meltano in .venv-meltano, kept apart
# from the tap's venv so that Meltano's dependencies never constrain the tap's.
# Expects the repository root as the current directory.

MELTANO_VERSION=4.4.1
MELTANO_VENV=${MELTANO_VENV:-$PWD/.venv-meltano}
export MELTANO_BIN="$MELTANO_VENV/bin/meltano"

# Quiet, offline-friendly Meltano: no usage stats, no version check against the network.
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false
export MELTANO_DISABLE_TRACKING=true
export MELTANO_CLI_DISABLE_VERSION_CHECK=1
export MELTANO_CLI_LOG_LEVEL=${MELTANO_CLI_LOG_LEVEL:-warning}
# Caches stay in the work tree (git-ignored) unless the caller chose its own.
export UV_CACHE_DIR=${UV_CACHE_DIR:-$PWD/.cache/uv}
export XDG_CACHE_HOME=${XDG_CACHE_HOME:-$PWD/.cache}

ensure_meltano() {
    # uv installs Meltano in seconds where pip takes half a minute; Meltano needs uv anyway.
    if [ -x "$MELTANO_BIN" ] && "$MELTANO_BIN" --version 2>/dev/null | grep -q "version $MELTANO_VERSION\$"; then
        return 0
    fi
    local py=${PYTHON:-python3}
    "$py" -m venv "$MELTANO_VENV"
    "$MELTANO_VENV/bin/python" -m pip install -q --disable-pip-version-check uv
    "$MELTANO_VENV/bin/uv" pip install -q --python "$MELTANO_VENV/bin/python" "meltano==$MELTANO_VERSION"
}
