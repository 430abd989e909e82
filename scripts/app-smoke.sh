#!/usr/bin/env bash
# Smoke test of the real desktop app under Xvfb: start it on a tiny synthetic model, type a
# message with xdotool, kill -9 it while it replies, restart it, check that the message survived,
# and take screenshots (target/app-smoke-*.png). Needs xvfb, xdotool and imagemagick
# (apt-get install xvfb xdotool imagemagick); scripts/check.sh runs it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
TARGET=${CARGO_TARGET_DIR:-target}
for tool in Xvfb xdotool import; do
    command -v "$tool" >/dev/null || { echo "app-smoke: $tool is missing (apt-get install xvfb xdotool imagemagick)" >&2; exit 1; }
done
cargo build --locked -q -p lanternfish-app -p lanternfish --bins
APP=$TARGET/debug/lanternfish-app
WORK=$(mktemp -d)
export LANTERNFISH_DATA_DIR=$WORK/data XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$WORK}
"$TARGET/debug/lanternfish" synth --preset tiny-v3 --type f32 --seed 3 --out "$WORK/tiny.gguf" 2>/dev/null

# Xvfb picks a free display itself and writes its number to fd 3.
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 3>"$WORK/display" >"$WORK/xvfb.log" 2>&1 &
XVFB=$!
APP_PID=""
cleanup() {
    [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null || true
    kill "$XVFB" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 100); do [ -s "$WORK/display" ] && break; sleep 0.1; done
[ -s "$WORK/display" ] || { echo "app-smoke: Xvfb did not start" >&2; cat "$WORK/xvfb.log" >&2; exit 1; }
export DISPLAY=:$(head -1 "$WORK/display")
for _ in $(seq 50); do xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.1; done

# Waits up to $1 seconds for the command in the remaining arguments to succeed.
wait_until() {
    local limit=$1 start=$SECONDS
    shift
    until "$@" >/dev/null 2>&1; do
        if [ $((SECONDS - start)) -ge "$limit" ]; then
            echo "app-smoke: timed out waiting for: $*" >&2
            return 1
        fi
        sleep 0.2
    done
}
fail() {
    echo "app-smoke: $*" >&2
    import -window root "$TARGET/app-smoke-failure.png" 2>/dev/null &&
        echo "app-smoke: screenshot in $TARGET/app-smoke-failure.png" >&2
    echo "--- app log" >&2
    tail -30 "$WORK/app.log" >&2 || true
    exit 1
}
start_app() {
    "$APP" "$@" >>"$WORK/app.log" 2>&1 &
    APP_PID=$!
    wait_until 60 xdotool search --name '^lanternfish$' || fail "the window did not appear"
    WIN=$(xdotool search --name '^lanternfish$' | head -1)
    xdotool windowfocus --sync "$WIN" 2>/dev/null || true
}

# 1. Start on the model (CPU reference: quick to load and fast on the tiny model).
start_app --model "$WORK/tiny.gguf" --cpu --ctx 1024
# The app records a loaded model in its recent list.
wait_until 120 grep -q tiny.gguf "$LANTERNFISH_DATA_DIR/settings.json" || fail "the model did not load"
sleep 1
# 2. Click into the message field, type a message and send it with Enter.
xdotool windowfocus --sync "$WIN"
xdotool mousemove --window "$WIN" 650 640 click 1
sleep 0.5
xdotool type --delay 20 "Hello from xdotool"
xdotool key Return
wait_until 30 grep -rq "Hello from xdotool" "$LANTERNFISH_DATA_DIR/chats" || fail "the message was not saved"
sleep 1
import -window root "$TARGET/app-smoke-chat.png"
# 3. kill -9 during the reply, then restart.
kill -9 "$APP_PID"
wait "$APP_PID" 2>/dev/null || true
APP_PID=""
python3 - "$LANTERNFISH_DATA_DIR/chats" <<'PY' || fail "the chat file is not valid after kill -9"
import json, pathlib, sys
files = list(pathlib.Path(sys.argv[1]).glob("*.json"))
chats = [json.loads(f.read_text()) for f in files]
assert any(m["content"] == "Hello from xdotool" for c in chats for m in c["messages"]), chats
PY
start_app
sleep 3
ls "$LANTERNFISH_DATA_DIR/chats" | grep -q corrupt && fail "a chat file was set aside after kill -9"
# The saved chat is the second entry of the sidebar (the app opens on a new empty chat).
xdotool mousemove --window "$WIN" 60 75 click 1
sleep 1
import -window root "$TARGET/app-smoke-restart.png"
kill "$APP_PID"
wait "$APP_PID" 2>/dev/null || true
APP_PID=""
echo "app-smoke: ok (screenshots in $TARGET/app-smoke-chat.png, $TARGET/app-smoke-restart.png)"
